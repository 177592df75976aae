//! Password hashing with argon2id. Hashes are PHC strings, so each carries the cost it was made
//! with; a cost change in the config applies to new hashes (and to old ones at their next login).
//!
//! An unknown user name costs the same as a known one: verification then runs against a dummy hash
//! made with the current cost, and fails.

use crate::config::Argon2Config;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Mutex;

fn hasher(cost: &Argon2Config) -> Result<Argon2<'static>, String> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str, cost: &Argon2Config) -> Result<String, String> {
    let salt = SaltString::encode_b64(&super::secret::random_bytes()[..16]).map_err(|e| e.to_string())?;
    hasher(cost)?.hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Verifies a password against a stored PHC string. A malformed stored hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash was made with a different cost than the configured one.
pub fn needs_rehash(phc: &str, cost: &Argon2Config) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return true };
    let Ok(params) = Params::try_from(&parsed) else { return true };
    params.m_cost() != cost.memory_kib || params.t_cost() != cost.iterations || params.p_cost() != cost.parallelism
}

/// The most an imported hash may cost to verify: argon2id, version 19, at most 256 MiB, 64 passes
/// and 16 lanes (the bounds of `accounts.argon2`, with memory capped lower: every login with the
/// hash allocates it). A hash whose cost differs from the configured one is rehashed at its first login.
pub const MAX_IMPORTED_MEMORY_KIB: u32 = 256 * 1024;

/// Checks a password hash brought from elsewhere (`user import`): an argon2id PHC string whose cost
/// is within bounds, with a salt and a 16-64 byte output. Never a clear password: anything else is
/// refused with what is wrong, without repeating the text.
pub fn check_phc(phc: &str) -> Result<(), String> {
    if phc.len() > 512 {
        return Err("is longer than 512 bytes: not a PHC string".into());
    }
    let parsed =
        PasswordHash::new(phc).map_err(|_| "is not a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!("uses {}; only argon2id is accepted", parsed.algorithm.as_str()));
    }
    if parsed.version != Some(0x13) {
        return Err("must be argon2 version 19 (v=19)".into());
    }
    let params = Params::try_from(&parsed).map_err(|e| format!("has unusable parameters: {e}"))?;
    if params.m_cost() > MAX_IMPORTED_MEMORY_KIB || params.t_cost() > 64 || params.p_cost() > 16 {
        return Err(format!(
            "costs too much to verify (m={}, t={}, p={}): at most m={MAX_IMPORTED_MEMORY_KIB}, t=64, p=16",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    if parsed.salt.is_none_or(|s| s.len() < 11) {
        return Err("has no salt or one shorter than 8 bytes".into());
    }
    match parsed.hash {
        Some(h) if (16..=64).contains(&h.len()) => Ok(()),
        _ => Err("has no hash output or one outside 16-64 bytes".into()),
    }
}

static DUMMY: Mutex<Option<(Argon2Config, String)>> = Mutex::new(None);

/// Spends the time of one verification at the current cost, for a user that does not exist.
pub fn verify_dummy(password: &str, cost: &Argon2Config) {
    let phc = {
        let mut slot = DUMMY.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some((c, h)) if c == cost => h.clone(),
            _ => {
                let h = hash("gatewarden-timing-equaliser", cost).unwrap_or_default();
                *slot = Some((*cost, h.clone()));
                h
            }
        }
    };
    let _ = verify(password, &phc);
}

/// A generated password: 20 characters of base64url (120 bits).
pub fn generate() -> String {
    super::secret::random_text()[..20].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Config = Argon2Config { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn hash_verify_and_rehash() {
        let h = hash("correct horse", &CHEAP).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a phc string"));
        assert!(!needs_rehash(&h, &CHEAP));
        assert!(needs_rehash(&h, &Argon2Config { memory_kib: 128, ..CHEAP }));
        verify_dummy("anything", &CHEAP);
    }

    #[test]
    fn only_bounded_argon2id_hashes_are_accepted_for_import() {
        let h = hash("correct horse", &CHEAP).unwrap();
        assert_eq!(check_phc(&h), Ok(()));
        for bad in [
            "correct horse",
            "",
            &h.replace("argon2id", "argon2i"),
            &h.replace("v=19", "v=16"),
            &h.replace("m=64", "m=4194304"),
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            assert!(check_phc(bad).is_err(), "{bad:?} accepted");
        }
        let e = check_phc("my secret password").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}

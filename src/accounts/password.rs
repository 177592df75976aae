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
}

//! Password hashing with argon2id. Hashes are PHC strings, so each carries the cost it was made
//! with; a cost change in the config applies to new hashes (and to old ones at their next login).
//!
//! An unknown user name costs the same as a known one: verification then runs against a dummy hash
//! made with the current cost, and fails.
//!
//! argon2's working memory (`memory_kib`, 19 MiB by default) comes from a small pool
//! ([`set_memory_slots`]): at most one buffer per password check the daemon runs at once, and
//! [`WARM`] of them kept between checks. Allocating it afresh per check either kept freed blocks in
//! glibc's arenas (RSS growing by 19 MiB per thread that ever hashed) or, with the daemon's fixed
//! mmap threshold, paid a page fault per 4 KiB on every login (+40% per login, docs/performance.md).
//! The kept buffer makes the usual login (one at a time) fault-free for a resting RSS of one memory
//! cost; checks running beside it get a fresh buffer that goes back to the system afterwards, so the
//! peak stays what it was (one memory cost per check running) and the resting RSS does not grow to
//! it. A check beyond the slots waits for one to come free; the password gates in front of every
//! transport make that rare. A buffer is zeroed after each check, so the kept one holds nothing
//! derived from a password.

use crate::config::Argon2Config;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Condvar, Mutex};

fn params(cost: &Argon2Config) -> Result<Params, String> {
    Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None).map_err(|e| format!("argon2 parameters: {e}"))
}

/// Hashes a password into a PHC string (argon2id, v19, a 16-byte random salt, 32 bytes of output:
/// what `argon2::PasswordHasher` makes with these parameters).
pub fn hash(password: &str, cost: &Argon2Config) -> Result<String, String> {
    let params = params(cost)?;
    let salt = SaltString::encode_b64(&super::secret::random_bytes()[..16]).map_err(|e| e.to_string())?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), Some(params.block_count()), |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
    })
    .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Verifies a password against a stored PHC string, with the algorithm, version and cost it names. A
/// malformed stored hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    verify_with(password, phc, None)
}

/// `keep`: the block count of the configured cost, when the caller knows it (see [`with_memory`]).
fn verify_with(password: &str, phc: &str, keep: Option<usize>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    // The stored output's length (4 to 64 bytes: `Output` allows no other).
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let hashed = with_memory(params.block_count(), keep, |blocks| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
    });
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(out).is_ok_and(|computed| computed == expected)
}

/// Buffers kept between checks: the usual login, one at a time, never page-faults its memory.
pub const WARM: usize = 1;

/// The reused working memory: `free` buffers ready for the next check (at most [`WARM`]), `lent` out
/// now, never more than `slots` in all.
struct Pool {
    free: Vec<Vec<Block>>,
    lent: usize,
    slots: usize,
    /// Block count of the configured cost (what the last `hash` or `verify_dummy` used): a buffer of
    /// another size, made for a stored hash of another cost, is not kept.
    keep: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), lent: 0, slots: 1, keep: 0 });
static RETURNED: Condvar = Condvar::new();

/// How many argon2 buffers may exist at once: the number of password checks the daemon lets run at
/// once (its password gates), so none of them waits here. 1 until set (the CLI, tests, benches).
pub fn set_memory_slots(slots: usize) {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    pool.slots = slots.max(1);
    let keep_free = pool.slots.saturating_sub(pool.lent).min(WARM);
    pool.free.truncate(keep_free);
    RETURNED.notify_all();
}

/// Buffers held by the pool now (free and lent), for the tests and the login bench.
pub fn memory_buffers() -> usize {
    let pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    pool.free.len() + pool.lent
}

/// Runs `f` on at least `blocks` blocks of reused memory, waiting for a slot if all are lent.
fn with_memory<R>(blocks: usize, keep: Option<usize>, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let mut buffer = {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        while pool.free.is_empty() && pool.lent >= pool.slots {
            pool = RETURNED.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(keep) = keep {
            pool.keep = keep;
        }
        pool.lent += 1;
        pool.free.pop().unwrap_or_default()
    };
    // The lent count is given back even if `f` panics; the buffer is kept only if it is of the
    // configured size and there is room.
    struct Lent(Option<Vec<Block>>);
    impl Drop for Lent {
        fn drop(&mut self) {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            pool.lent -= 1;
            let room = pool.free.len() < WARM && pool.free.len() + pool.lent < pool.slots;
            if let Some(b) = self.0.take().filter(|b| room && b.len() == pool.keep) {
                pool.free.push(b);
            }
            RETURNED.notify_one();
        }
    }
    let mut lent = Lent(None);
    if buffer.len() < blocks {
        // Made (or grown) outside the lock: writing 19 MiB takes a few milliseconds.
        buffer.resize(blocks, Block::default());
    }
    let r = f(&mut buffer[..blocks]);
    // Cleared before anyone else gets it: the blocks are derived from this password, and the first
    // ones test a guess of it for the price of a BLAKE2b, without argon2's memory cost (~1 ms per
    // 19 MiB, against the page faults a fresh buffer pays).
    buffer[..blocks].fill(Block::default());
    lent.0 = Some(buffer);
    r
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
    let keep = params(cost).map(|p| p.block_count()).ok();
    let _ = verify_with(password, &phc, keep);
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

    /// Hashes made before the pool (argon2's own `PasswordHasher`, fresh memory each time) verify,
    /// and hashes made now are what it makes: same PHC shape, verified by argon2's own verifier.
    #[test]
    fn pooled_hashes_are_interchangeable_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let p = params(&CHEAP).unwrap();
        for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            for version in [Version::V0x13, Version::V0x10] {
                let old = Argon2::new(algorithm, version, p.clone()).hash_password(b"pw", &salt).unwrap().to_string();
                assert!(verify("pw", &old), "{old}");
                assert!(!verify("pW", &old), "{old}");
            }
        }
        // A longer stored output than ours, and another cost than the configured one.
        let long = Params::new(128, 3, 2, Some(64)).unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, long).hash_password(b"pw", &salt).unwrap();
        assert!(verify("pw", &old.to_string()));
        assert!(!verify("pw ", &old.to_string()));

        let new = hash("pw", &CHEAP).unwrap();
        assert_eq!(new.split('$').nth(3), Some("m=64,t=1,p=1"), "{new}");
        let parsed = PasswordHash::new(&new).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"px", &parsed).is_err());
        // A stored hash cut short or with a bad salt never verifies.
        assert!(!verify("pw", &new[..new.len() - 10]));
        assert!(!verify("pw", &new.replacen("$argon2id$", "$argon2x$", 1)));
    }

    /// Never more buffers than slots, however many threads check at once; one kept between checks.
    #[test]
    fn the_pool_never_holds_more_buffers_than_slots() {
        set_memory_slots(2);
        let stored = hash("pw", &CHEAP).unwrap();
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..20 {
                        assert!(verify("pw", &stored));
                        most.fetch_max(memory_buffers(), std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        let most = most.into_inner();
        assert!((1..=2).contains(&most), "{most} buffers at once");
        assert!((1..=2).contains(&memory_buffers()), "one kept for the next check");
        {
            let pool = POOL.lock().unwrap();
            let words = pool.free.iter().flat_map(|b| b.iter()).flat_map(|block| block.as_ref().iter());
            assert!(words.into_iter().all(|w| *w == 0), "a kept buffer holds nothing of the last password");
        }
        set_memory_slots(1);
        assert_eq!(memory_buffers(), 1, "slots lowered: the extra buffer goes");
    }
}

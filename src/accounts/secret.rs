//! Bearer secrets (login tokens, API keys, session tokens): 256 random bits, shown once, stored only
//! as a SHA-256 digest, compared in constant time.
//!
//! A secret is written `<prefix>_<row id>.<43 chars base64url>`. The row id lets the daemon find the
//! one candidate row without searching by secret, so the only comparison made is the constant-time
//! digest comparison. SHA-256 (not argon2) is right here: the secret has 256 bits of entropy, so
//! there is nothing for a slow hash to protect.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const TOKEN_PREFIX: &str = "gwt";
pub const KEY_PREFIX: &str = "gwk";
pub const SESSION_PREFIX: &str = "gws";

/// 32 random bytes from the OS.
pub fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    // The kernel's CSPRNG does not fail once the system has booted; if it ever does, refuse to
    // continue rather than hand out a predictable secret.
    if let Err(e) = getrandom::fill(&mut b) {
        panic!("operating system random source failed: {e}");
    }
    b
}

/// A fresh random secret body (base64url, no padding).
pub fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

pub fn digest(secret_body: &str) -> Vec<u8> {
    Sha256::digest(secret_body.as_bytes()).to_vec()
}

/// Formats the full secret handed to the client.
pub fn format(prefix: &str, id: i64, body: &str) -> String {
    format!("{prefix}_{id}.{body}")
}

/// Whether `text` looks like a secret of the kind `prefix` names (`gws_...`), without parsing it.
pub fn is_kind(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('_'))
}

/// Splits `<prefix>_<id>.<body>`; None when the text is not of that form.
pub fn parse<'a>(prefix: &str, text: &'a str) -> Option<(i64, &'a str)> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, body) = rest.split_once('.')?;
    let id: i64 = id.parse().ok()?;
    (id > 0 && body.len() == 43).then_some((id, body))
}

/// Constant-time comparison of a presented secret body with a stored digest.
pub fn matches(body: &str, stored_digest: &[u8]) -> bool {
    digest(body).ct_eq(stored_digest).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let body = random_text();
        assert_eq!(body.len(), 43);
        let s = format(TOKEN_PREFIX, 42, &body);
        assert_eq!(parse(TOKEN_PREFIX, &s), Some((42, body.as_str())));
        assert_eq!(parse(KEY_PREFIX, &s), None);
        assert_eq!(parse(TOKEN_PREFIX, "gwt_x.abc"), None);
        assert_eq!(parse(TOKEN_PREFIX, "gwt_1.short"), None);
        assert!(matches(&body, &digest(&body)));
        assert!(!matches(&random_text(), &digest(&body)));
        assert_ne!(random_text(), random_text());
    }
}

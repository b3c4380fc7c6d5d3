//! The cluster secret: how strong a cookie must be, and the keys derived from it.
//!
//! The cookie is never used as a key directly. It is stretched once per start with Argon2id (memory-hard,
//! so each guess in an offline dictionary attack costs what it costs us) into a 32-byte master key, and
//! everything the cluster keys on is derived from that master key with BLAKE3's key derivation under
//! its own context string:
//! - the ractor_cluster handshake cookie (challenge-response between nodes), and
//! - the input keying material of the cluster's X25519 window key, whose public half every node serves.
//!
//! An attacker who records a handshake or reads the public window key can test cookie guesses offline;
//! Argon2id makes each guess cost 19 MiB and tens of milliseconds, and the strength rules below refuse
//! the guessable values. `verisim cookie new` (or [`new_cookie`]) gives 256 random bits.

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// Shortest cookie accepted, in characters.
pub const MIN_COOKIE_CHARS: usize = 16;
/// Fewest distinct characters a cookie must contain (refuses `aaaaaaaaaaaaaaaa`, `0101...`).
pub const MIN_DISTINCT_CHARS: usize = 6;

/// Values that appear in documentation and examples, refused whatever their length.
const KNOWN_VALUES: &[&str] = &[
    "change-me",
    "changeme",
    "change-me-please",
    "cookie",
    "secret",
    "password",
    "verisim",
    "verisim-cookie",
    "verisim test cookie",
    "insecure",
];

/// Argon2id parameters: OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;
/// Argon2 wants a salt; the cluster has no shared value but the cookie, so the salt is a fixed,
/// versioned domain string: it separates VeriSim's derivation from any other use of the same
/// passphrase, and the memory-hard cost is what resists guessing.
const ARGON2_SALT: &[u8] = b"verisim cluster secret v2";

const HANDSHAKE_CONTEXT: &str = "verisim 2026-12 ractor_cluster handshake cookie v2";
const WINDOW_CONTEXT: &str = "verisim 2026-12 cluster window dh ikm v2";

/// Checks that a cookie is not guessable: long enough, not a repetition, not a documented example.
///
/// # Errors
/// [`ConfigError::WeakCookie`] saying which rule it breaks.
pub fn check_strength(cookie: &str) -> Result<(), ConfigError> {
    let weak = |why: String| Err(ConfigError::WeakCookie(why));
    let chars = cookie.chars().count();
    if chars < MIN_COOKIE_CHARS {
        return weak(format!(
            "it has {chars} characters, fewer than {MIN_COOKIE_CHARS}"
        ));
    }
    let mut distinct: Vec<char> = cookie.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return weak(format!(
            "it uses only {} distinct characters (at least {MIN_DISTINCT_CHARS})",
            distinct.len()
        ));
    }
    let lower = cookie.to_ascii_lowercase();
    if KNOWN_VALUES.iter().any(|k| lower == *k) {
        return weak("it is a value from documentation or examples".into());
    }
    Ok(())
}

/// A new random cookie: 32 bytes from the OS generator, hex (256 bits).
pub fn new_cookie() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys a node derives from the cookie, once per start.
#[derive(Clone)]
pub struct ClusterKeys {
    handshake: Zeroizing<String>,
    window_ikm: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKeys(…)")
    }
}

impl ClusterKeys {
    /// Stretches `cookie` with Argon2id and derives the keys. Deterministic: every node holding the
    /// same cookie derives the same keys.
    ///
    /// # Errors
    /// [`ConfigError::WeakCookie`] for a cookie [`check_strength`] refuses.
    pub fn derive(cookie: &str) -> Result<Self, ConfigError> {
        check_strength(cookie)?;
        let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
            .map_err(|e| ConfigError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut master = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(cookie.as_bytes(), ARGON2_SALT, master.as_mut())
            .map_err(|e| ConfigError::Invalid(format!("argon2: {e}")))?;
        let handshake = blake3::derive_key(HANDSHAKE_CONTEXT, master.as_ref());
        let window_ikm = Zeroizing::new(blake3::derive_key(WINDOW_CONTEXT, master.as_ref()));
        Ok(Self {
            handshake: Zeroizing::new(handshake.iter().map(|b| format!("{b:02x}")).collect()),
            window_ikm,
        })
    }

    /// What ractor_cluster's challenge-response handshake is keyed with (64 hex characters).
    pub fn handshake_cookie(&self) -> &str {
        &self.handshake
    }

    /// Input keying material of the cluster's X25519 window key.
    pub fn window_ikm(&self) -> &[u8; 32] {
        &self.window_ikm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_cookies_are_refused_with_the_rule_they_break() {
        for (cookie, rule) in [
            ("change-me", "characters, fewer than"),
            ("short-cookie", "fewer than"),
            ("aaaaaaaaaaaaaaaaaaaaaaaa", "distinct"),
            ("0101010101010101", "distinct"),
            ("VERISIM TEST COOKIE", "documentation"),
            ("change-me-please", "documentation"),
        ] {
            match check_strength(cookie) {
                Err(ConfigError::WeakCookie(why)) => {
                    assert!(why.contains(rule), "{cookie:?}: {why}");
                }
                other => panic!("{cookie:?} was not refused as weak: {other:?}"),
            }
        }
        check_strength("cookie-of-the-test-cluster").unwrap();
        check_strength(&new_cookie()).unwrap();
    }

    #[test]
    fn new_cookies_are_256_random_bits_in_hex() {
        let a = new_cookie();
        let b = new_cookie();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn derivation_is_deterministic_separated_and_not_the_cookie() {
        let cookie = "cookie-of-the-test-cluster";
        let a = ClusterKeys::derive(cookie).unwrap();
        let b = ClusterKeys::derive(cookie).unwrap();
        assert_eq!(a.handshake_cookie(), b.handshake_cookie());
        assert_eq!(a.window_ikm(), b.window_ikm());
        assert_eq!(a.handshake_cookie().len(), 64);
        assert_ne!(a.handshake_cookie(), cookie);
        // The two keys are independent: neither is the other's encoding.
        assert_ne!(a.handshake_cookie(), hex_of(a.window_ikm()));
        let other = ClusterKeys::derive("cookie-of-another-cluster").unwrap();
        assert_ne!(a.handshake_cookie(), other.handshake_cookie());
        assert_ne!(a.window_ikm(), other.window_ikm());
        assert!(matches!(
            ClusterKeys::derive("secret"),
            Err(ConfigError::WeakCookie(_))
        ));
    }

    #[test]
    fn the_derivation_is_pinned() {
        // A change of parameters or contexts changes every cluster's keys (nodes of two versions could
        // no longer talk, and every open window dies): this vector makes such a change deliberate.
        let k = ClusterKeys::derive("cookie-of-the-test-cluster").unwrap();
        assert_eq!(&k.handshake_cookie()[..16], PINNED_HANDSHAKE_PREFIX);
    }

    const PINNED_HANDSHAKE_PREFIX: &str = "f0e70704137c832d";

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }
}

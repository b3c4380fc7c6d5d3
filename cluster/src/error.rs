//! The error of an unusable node configuration, cookie or TLS material.
//!
//! A module of its own, below both [`crate::config`] (which loads the cookie) and
//! [`crate::secret`] (which judges it and derives keys from it), so neither depends on the other
//! for it. Its public paths are `config::ConfigError` and the crate root.

use std::path::PathBuf;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad or missing field.
    #[error("invalid cluster configuration: {0}")]
    Invalid(String),
    /// The cookie's environment variable is unset or not Unicode.
    #[error("cookie environment variable {0} is not set")]
    CookieEnvMissing(String),
    /// The cookie file could not be read.
    #[error("cannot read cookie file {path}: {source}")]
    CookieFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The cookie file is readable or writable by others.
    #[error(
        "cookie file {path} has mode {mode:o}; it must not be accessible by group or others (chmod 600)"
    )]
    CookiePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The cookie is empty.
    #[error("the cookie is empty")]
    EmptyCookie,
    /// The cookie is guessable (see [`crate::secret::check_strength`]).
    #[error("the cookie is too weak: {0}; make one with `verisim cookie new`")]
    WeakCookie(String),
    /// A TLS file could not be read or parsed.
    #[error("TLS setup failed for {path}: {reason}")]
    Tls {
        /// The offending file (or setting).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

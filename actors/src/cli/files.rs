//! The key and session files: JSON, mode 0600, written atomically (temp file, fsync, rename, fsync
//! the directory), refused on read when group or others can read them (like ssh does).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use verisim_client::auth::{IdentityKey, WindowKey};
use verisim_client::http::Session;
use verisim_client::wire::{ClientId, WindowId};

const KEY_FORMAT: &str = "verisim-identity-v1";
const SESSION_FORMAT: &str = "verisim-session-v1";

/// An identity key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// `verisim-identity-v1`.
    pub format: String,
    /// The client name.
    pub client: ClientId,
    /// The Ed25519 seed, hex.
    pub secret_key: String,
    /// The public key, hex (for people; checked against the secret on read).
    pub public_key: String,
}

impl KeyFile {
    /// The file for `key` under `client`.
    pub fn new(client: ClientId, key: &IdentityKey) -> Self {
        Self {
            format: KEY_FORMAT.into(),
            client,
            secret_key: key.to_hex().to_string(),
            public_key: key.public().to_hex(),
        }
    }

    /// The key, checked against the recorded public key.
    pub fn identity(&self) -> Result<IdentityKey, String> {
        if self.format != KEY_FORMAT {
            return Err(format!(
                "unknown key file format {:?} (expected {KEY_FORMAT})",
                self.format
            ));
        }
        let key = IdentityKey::from_hex(&self.secret_key).map_err(|e| e.to_string())?;
        if key.public().to_hex() != self.public_key.to_ascii_lowercase() {
            return Err("the public key does not match the secret key".into());
        }
        Ok(key)
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_key);
    }
}

/// An open window, as `verisim window open` stores it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFile {
    /// `verisim-session-v1`.
    pub format: String,
    /// Node addresses to send requests to.
    pub nodes: Vec<String>,
    /// The client.
    pub client: ClientId,
    /// The window.
    pub window: WindowId,
    /// The window's HMAC key, hex.
    pub window_key: String,
    /// Expiry, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

impl SessionFile {
    /// The file for an open window.
    pub fn new(nodes: Vec<String>, s: &Session) -> Self {
        Self {
            format: SESSION_FORMAT.into(),
            nodes,
            client: s.client.clone(),
            window: s.window.clone(),
            window_key: s.key.to_hex().to_string(),
            expires_at_ms: s.expires_at_ms,
        }
    }

    /// The session it holds.
    pub fn session(&self) -> Result<Session, String> {
        if self.format != SESSION_FORMAT {
            return Err(format!(
                "unknown session file format {:?} (expected {SESSION_FORMAT})",
                self.format
            ));
        }
        Ok(Session {
            client: self.client.clone(),
            window: self.window.clone(),
            key: WindowKey::from_hex(&self.window_key).map_err(|e| e.to_string())?,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.window_key);
    }
}

/// Writes `bytes` to `path` with mode 0600, atomically; creates the parent directory (0700).
/// Refuses to replace an existing file unless `overwrite`.
pub fn write_private_file(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), String> {
    let shown = path.display();
    if !overwrite && path.exists() {
        return Err(format!("{shown} exists (use --force to replace it)"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let name = path
        .file_name()
        .ok_or_else(|| format!("{shown} is not a file path"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // `mode` applies only on creation: a stale temp file keeps its mode otherwise.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {shown}: {e}"));
    }
    Ok(())
}

fn read_private_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T, String> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {shown} is readable by others (mode {:o}); run chmod 600 on it",
            meta.permissions().mode() & 0o777
        ));
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?,
    );
    serde_json::from_str(&text).map_err(|e| format!("{what} {shown} is malformed: {e}"))
}

/// Reads and checks an identity key file.
pub fn read_key_file(path: &Path) -> Result<(ClientId, IdentityKey), String> {
    let f: KeyFile = read_private_json(path, "key file")?;
    let key = f.identity()?;
    Ok((f.client.clone(), key))
}

/// Reads a session file.
pub fn read_session_file(path: &Path) -> Result<(Vec<String>, Session), String> {
    let f: SessionFile = read_private_json(path, "session file")?;
    let s = f.session()?;
    Ok((f.nodes.clone(), s))
}

/// Reads an admin token file: surrounding whitespace is ignored; an empty file, or one that others
/// (not owner or group) can read, is refused.
pub fn read_token_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta =
        fs::metadata(path).map_err(|e| format!("cannot read admin token file {shown}: {e}"))?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(format!(
            "admin token file {shown} is readable by others (mode {:o}); run chmod 600 on it",
            meta.permissions().mode() & 0o777
        ));
    }
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read admin token file {shown}: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("admin token file {shown} is empty"));
    }
    Ok(token.to_owned())
}

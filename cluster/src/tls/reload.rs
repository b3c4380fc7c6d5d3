//! A certificate and key that follow their files: renewed certificates are taken up without a
//! restart, as etcd does.
//!
//! Every handshake asks the resolver for the node's certificate; at most once per
//! [`CHECK_EVERY`] the resolver looks at both files' identity (inode, size, modification time)
//! and, when either changed, loads the pair again. A pair that cannot be used (a half-written
//! file, a key that does not match the certificate) is refused with one WARN line and the previous
//! pair keeps serving, so a botched renewal never takes a node off the network; the new files are
//! tried again once they change again. Connections already open keep the certificate they shook
//! hands with.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_rustls::rustls;
use tokio_rustls::rustls::SignatureScheme;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::ClientHello;
use tokio_rustls::rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::{load_certs, load_key, tls_err};
use crate::error::ConfigError;

/// How often, at most, a handshake looks at the files.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Which version of a file is on disk: a rename-into-place changes the inode, an in-place write
/// the size or the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    size: u64,
    mtime_ns: i128,
}

fn file_stamp(path: &Path) -> std::io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    Ok(FileStamp {
        inode: m.ino(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

type PairStamp = (FileStamp, FileStamp);

#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    /// The files the serving pair was loaded from.
    loaded: PairStamp,
    /// The files last refused, so a bad pair is reported once, not at every handshake.
    refused: Option<PairStamp>,
    checked: Instant,
}

/// The node's certificate chain and private key, reloaded when their files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_chain: PathBuf,
    private_key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Current>,
}

impl ReloadingCert {
    /// Loads the pair once; a pair that cannot be used is a configuration error at start.
    ///
    /// # Errors
    /// [`ConfigError::Tls`] naming the file that cannot be read or used.
    pub fn load(
        cert_chain: &Path,
        private_key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, ConfigError> {
        let (key, loaded) = load_pair(cert_chain, private_key, &provider)?;
        Ok(Arc::new(Self {
            cert_chain: cert_chain.to_path_buf(),
            private_key: private_key.to_path_buf(),
            provider,
            current: Mutex::new(Current {
                key,
                loaded,
                refused: None,
                checked: Instant::now(),
            }),
        }))
    }

    /// The pair to present now, loading the files again if they changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cur.checked.elapsed() >= CHECK_EVERY {
            cur.checked = Instant::now();
            self.reload_if_changed(&mut cur);
        }
        cur.key.clone()
    }

    fn reload_if_changed(&self, cur: &mut Current) {
        let Ok(now) = file_stamp(&self.cert_chain)
            .and_then(|c| file_stamp(&self.private_key).map(|k| (c, k)))
        else {
            return; // Mid-rename or removed: keep serving, look again later.
        };
        if now == cur.loaded || Some(now) == cur.refused {
            return;
        }
        match load_pair(&self.cert_chain, &self.private_key, &self.provider) {
            Ok((key, loaded)) => {
                info!(cert = %self.cert_chain.display(), "TLS certificate reloaded");
                cur.key = key;
                cur.loaded = loaded;
                cur.refused = None;
            }
            Err(e) => {
                warn!(error = %e, "new TLS certificate files refused; the previous pair still serves");
                cur.refused = Some(now);
            }
        }
    }
}

/// Reads both files and checks that the key matches the certificate. The stamps are taken before
/// reading, so a file that changes while it is read is read again at the next check.
fn load_pair(
    cert_chain: &Path,
    private_key: &Path,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, PairStamp), ConfigError> {
    let stamp = (
        file_stamp(cert_chain).map_err(|e| tls_err(cert_chain, e))?,
        file_stamp(private_key).map_err(|e| tls_err(private_key, e))?,
    );
    let certs = load_certs(cert_chain)?;
    let key = load_key(private_key)?;
    let certified =
        CertifiedKey::from_der(certs, key, provider).map_err(|e| tls_err(private_key, e))?;
    Ok((Arc::new(certified), stamp))
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn write_pair(dir: &Path, name: &str) -> (Vec<u8>, PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("node.crt"), dir.join("node.key"));
        // Written aside and renamed in, as a renewal tool does.
        std::fs::write(dir.join("tmp.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tmp.key"), key.serialize_pem()).unwrap();
        std::fs::rename(dir.join("tmp.crt"), &c).unwrap();
        std::fs::rename(dir.join("tmp.key"), &k).unwrap();
        (cert.der().to_vec(), c, k)
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// Makes the next `current()` look at the files.
    fn due(r: &ReloadingCert) {
        let mut cur = r.current.lock().unwrap();
        cur.checked = Instant::now().checked_sub(CHECK_EVERY).unwrap();
    }

    #[test]
    fn a_renewed_pair_is_served_after_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let (first, c, k) = write_pair(dir.path(), "one.test");
        let r = ReloadingCert::load(&c, &k, provider()).unwrap();
        assert_eq!(r.current().cert[0].as_ref(), &first[..]);
        let (second, _, _) = write_pair(dir.path(), "two.test");
        // Within the check interval the old pair still serves.
        assert_eq!(r.current().cert[0].as_ref(), &first[..]);
        due(&r);
        assert_eq!(r.current().cert[0].as_ref(), &second[..]);
    }

    #[test]
    fn a_broken_renewal_keeps_the_previous_pair_and_a_fixed_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (first, c, k) = write_pair(dir.path(), "one.test");
        let r = ReloadingCert::load(&c, &k, provider()).unwrap();
        // A key that does not match the certificate (another pair's key copied over).
        let other = KeyPair::generate().unwrap();
        std::fs::write(&k, other.serialize_pem()).unwrap();
        due(&r);
        assert_eq!(r.current().cert[0].as_ref(), &first[..]);
        // A truncated certificate.
        std::fs::write(&c, b"-----BEGIN CERTIFICATE-----\nAAAA").unwrap();
        due(&r);
        assert_eq!(r.current().cert[0].as_ref(), &first[..]);
        let (fixed, _, _) = write_pair(dir.path(), "fixed.test");
        due(&r);
        assert_eq!(r.current().cert[0].as_ref(), &fixed[..]);
    }

    #[test]
    fn a_pair_that_cannot_be_used_at_start_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, c, k) = write_pair(dir.path(), "one.test");
        std::fs::write(&k, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let e = ReloadingCert::load(&c, &k, provider()).unwrap_err();
        assert!(e.to_string().contains("node.key"), "{e}");
    }
}

//! Node configuration: who we are, where we listen, how we authenticate, whom we dial, and the
//! failure-detection and redial parameters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

// Defined below `config` and `secret`, which both return it; re-exported here, its public path.
pub use crate::error::ConfigError;

/// Where the shared cookie comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieSource {
    /// The cookie itself (tests, development).
    Value(String),
    /// The name of an environment variable holding the cookie.
    Env(String),
    /// A file holding the cookie (trailing whitespace ignored); like Erlang's `.erlang.cookie`, it
    /// must not be readable or writable by group or others.
    File(PathBuf),
}

/// TLS between nodes (rustls). Every node presents `cert_chain`/`private_key` and verifies the
/// peer it dials against `ca_certs` under the name `server_name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// PEM file with this node's certificate chain.
    pub cert_chain: PathBuf,
    /// PEM file with this node's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// PEM file with the certificates trusted to sign peers' certificates.
    pub ca_certs: PathBuf,
    /// The name peers' certificates are checked against when we dial them.
    pub server_name: String,
}

/// Configuration of one cluster node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster; peers are tracked by it. No `@`.
    pub node_name: String,
    /// Address the node listens on. Port 0 picks a free port (see `ClusterHandle::listen_port`).
    pub listen: SocketAddr,
    /// The address other nodes reach us at, `host:port` or just `host` (then the listen port),
    /// when it is not the listen address: a wildcard listen address, NAT, a container network, a
    /// forwarded port. Peers match the seed addresses they dial against it. Default: the listen
    /// address.
    pub advertise: Option<String>,
    /// The shared secret; nodes with different cookies refuse each other.
    pub cookie: CookieSource,
    /// Optional TLS; without it, traffic is cookie-authenticated but clear.
    pub tls: Option<TlsConfig>,
    /// Peers to dial and keep dialled: `host:port`, or `name=host:port` when the node behind the
    /// address is known (as in etcd's `--initial-cluster`): a named seed is never redialled while
    /// that node is connected, whatever address its connection came from. See [`SeedSpec`].
    pub seeds: Vec<String>,
    /// Largest inbound frame accepted, bytes (ractor_cluster drops a connection that sends more).
    pub max_frame_bytes: u64,
    /// How often we send a heartbeat to every peer, milliseconds.
    pub heartbeat_interval_ms: u64,
    /// A peer silent for this long is reported down and disconnected, milliseconds.
    pub heartbeat_deadline_ms: u64,
    /// A connection not ready (authenticated and synchronised) after this long is dropped,
    /// milliseconds.
    pub handshake_timeout_ms: u64,
    /// First redial delay after a failure, milliseconds.
    pub backoff_min_ms: u64,
    /// Longest redial delay, milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_name: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            cookie: CookieSource::Env("VERISIM_COOKIE".into()),
            tls: None,
            seeds: Vec::new(),
            max_frame_bytes: ractor_cluster::DEFAULT_MAX_INBOUND_FRAME_SIZE,
            heartbeat_interval_ms: 200,
            heartbeat_deadline_ms: 1_000,
            handshake_timeout_ms: 2_000,
            backoff_min_ms: 50,
            backoff_max_ms: 2_000,
        }
    }
}

impl ClusterConfig {
    /// A configuration with the defaults for everything but the name, the listen address and the
    /// cookie.
    pub fn new(node_name: impl Into<String>, listen: SocketAddr, cookie: CookieSource) -> Self {
        Self {
            node_name: node_name.into(),
            listen,
            cookie,
            ..Self::default()
        }
    }

    /// Heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// Silence after which a peer is down.
    pub fn heartbeat_deadline(&self) -> Duration {
        Duration::from_millis(self.heartbeat_deadline_ms)
    }

    /// Time a connection may take to become ready.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The host and port other nodes know us by, given the port we listen on.
    pub fn advertised(&self, listen_port: u16) -> Result<(String, u16), ConfigError> {
        match &self.advertise {
            None => Ok((host_of(self.listen.ip()), listen_port)),
            Some(a) => parse_advertise(a, listen_port),
        }
    }

    /// Check the fields that do not need the outside world.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.node_name.is_empty() {
            return bad("node_name is empty");
        }
        if self.node_name.contains('@') || self.node_name.chars().any(char::is_whitespace) {
            return bad("node_name must not contain '@' or whitespace");
        }
        if self.heartbeat_interval_ms == 0 {
            return bad("heartbeat_interval_ms must be positive");
        }
        if self.heartbeat_deadline_ms <= self.heartbeat_interval_ms {
            return bad("heartbeat_deadline_ms must exceed heartbeat_interval_ms");
        }
        if self.handshake_timeout_ms == 0 {
            return bad("handshake_timeout_ms must be positive");
        }
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            return bad("need 0 < backoff_min_ms <= backoff_max_ms");
        }
        // Room for a default-sized chunk plus the envelope.
        if self.max_frame_bytes < 64 * 1024 {
            return bad("max_frame_bytes must be at least 64 KiB");
        }
        for seed in &self.seeds {
            SeedSpec::parse(seed)?;
        }
        if let Some(a) = &self.advertise {
            parse_advertise(a, self.listen.port())?;
        }
        Ok(())
    }

    /// Resolve the cookie from its source.
    pub fn load_cookie(&self) -> Result<String, ConfigError> {
        let cookie = match &self.cookie {
            CookieSource::Value(v) => v.clone(),
            CookieSource::Env(var) => {
                std::env::var(var).map_err(|_| ConfigError::CookieEnvMissing(var.clone()))?
            }
            CookieSource::File(path) => read_cookie_file(path)?,
        };
        let cookie = cookie.trim_end().to_string();
        if cookie.is_empty() {
            return Err(ConfigError::EmptyCookie);
        }
        crate::secret::check_strength(&cookie)?;
        Ok(cookie)
    }

    /// Loads the cookie and derives the cluster's keys from it (Argon2id; tens of milliseconds).
    pub fn cluster_keys(&self) -> Result<crate::secret::ClusterKeys, ConfigError> {
        crate::secret::ClusterKeys::derive(&self.load_cookie()?)
    }
}

/// One seed, parsed: the address to dial and, when configured, the node expected behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// The node name given with `name=host:port`.
    pub name: Option<String>,
    /// `host:port` to dial.
    pub addr: String,
}

impl SeedSpec {
    /// `host:port` or `name=host:port`.
    pub fn parse(seed: &str) -> Result<Self, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let seed = seed.trim();
        let (name, addr) = match seed.split_once('=') {
            Some((name, addr)) => (Some(name.trim()), addr.trim()),
            None => (None, seed),
        };
        if let Some(name) = name
            && (name.is_empty() || name.contains('@') || name.chars().any(char::is_whitespace))
        {
            return bad(format!(
                "seed {seed:?}: a node name must be non-empty, without '@' or whitespace"
            ));
        }
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return bad(format!("seed {seed:?}: the address must be host:port")),
        }
        Ok(Self {
            name: name.map(str::to_string),
            addr: addr.to_string(),
        })
    }
}

/// How a listen IP is written as a host: IPv6 in brackets, so `host:port` stays parseable.
fn host_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `host:port`, `[v6]:port`, `host` or `[v6]` (then `default_port`).
fn parse_advertise(a: &str, default_port: u16) -> Result<(String, u16), ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "advertise {a:?}: want host:port or host (IPv6 in brackets)"
        ))
    };
    let a = a.trim();
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match after {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?,
        };
        (format!("[{v6}]"), port)
    } else {
        match a.split_once(':') {
            None => (a.to_string(), default_port),
            Some((host, port)) => (host.to_string(), port.parse().map_err(|_| bad())?),
        }
    };
    if host.is_empty() || host.contains('@') || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host, port))
}

fn read_cookie_file(path: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::CookieFile {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::CookiePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn base() -> ClusterConfig {
        ClusterConfig::new(
            "n1",
            "127.0.0.1:0".parse().unwrap(),
            CookieSource::Value("secret-of-the-config-tests".into()),
        )
    }

    #[test]
    fn defaults_validate() {
        base().validate().unwrap();
        assert_eq!(base().advertised(7100).unwrap(), ("127.0.0.1".into(), 7100));
    }

    #[test]
    fn advertise_forms() {
        let mut c = base();
        for (given, want) in [
            ("10.0.0.5:9100", ("10.0.0.5", 9100)),
            ("node2", ("node2", 7100)),
            ("node2.example:7000", ("node2.example", 7000)),
            ("[fd00::5]:9100", ("[fd00::5]", 9100)),
            ("[fd00::5]", ("[fd00::5]", 7100)),
        ] {
            c.advertise = Some(given.into());
            c.validate().unwrap();
            assert_eq!(
                c.advertised(7100).unwrap(),
                (want.0.to_string(), want.1),
                "{given}"
            );
        }
        for bad in ["", "host:port", "fd00::5", "[fd00::5]x", "a@b:1", ":7100"] {
            c.advertise = Some(bad.into());
            assert!(c.validate().is_err(), "{bad:?} accepted");
        }
        c.advertise = None;
        c.listen = "[::1]:0".parse().unwrap();
        assert_eq!(c.advertised(7100).unwrap(), ("[::1]".into(), 7100));
    }

    #[test]
    fn seeds_plain_and_named() {
        assert_eq!(
            SeedSpec::parse("10.0.0.2:7100").unwrap(),
            SeedSpec {
                name: None,
                addr: "10.0.0.2:7100".into()
            }
        );
        assert_eq!(
            SeedSpec::parse("n2=node2:7100").unwrap(),
            SeedSpec {
                name: Some("n2".into()),
                addr: "node2:7100".into()
            }
        );
        assert_eq!(SeedSpec::parse("n2=[::1]:7100").unwrap().addr, "[::1]:7100");
        for bad in [
            "node2",
            "=node2:7100",
            "a@b=node2:7100",
            "n2=node2:x",
            "n2=:7100",
        ] {
            assert!(SeedSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bad_fields_are_refused() {
        for f in [
            (|c: &mut ClusterConfig| c.node_name = String::new()) as fn(&mut ClusterConfig),
            |c| c.node_name = "a@b".into(),
            |c| c.heartbeat_deadline_ms = c.heartbeat_interval_ms,
            |c| c.heartbeat_interval_ms = 0,
            |c| c.backoff_min_ms = 0,
            |c| c.backoff_max_ms = 1,
            |c| c.max_frame_bytes = 100,
            |c| c.seeds = vec![" ".into()],
        ] {
            let mut c = base();
            f(&mut c);
            assert!(
                matches!(c.validate(), Err(ConfigError::Invalid(_))),
                "{c:?} accepted"
            );
        }
    }

    #[test]
    fn cookie_from_value_env_and_file() {
        assert_eq!(base().load_cookie().unwrap(), "secret-of-the-config-tests");

        let mut c = base();
        c.cookie = CookieSource::Env("VERISIM_CLUSTER_TEST_COOKIE_UNSET_XYZ".into());
        assert!(matches!(
            c.load_cookie(),
            Err(ConfigError::CookieEnvMissing(_))
        ));
        c.cookie = CookieSource::Env("PATH".into());
        assert!(c.load_cookie().is_ok());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "cookie-read-from-a-file").unwrap();
        drop(f);
        c.cookie = CookieSource::File(path.clone());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                c.load_cookie(),
                Err(ConfigError::CookiePermissions { mode: 0o644, .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(c.load_cookie().unwrap(), "cookie-read-from-a-file");

        std::fs::write(&path, "change-me\n").unwrap();
        assert!(matches!(c.load_cookie(), Err(ConfigError::WeakCookie(_))));

        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(c.load_cookie(), Err(ConfigError::EmptyCookie)));
        c.cookie = CookieSource::File(dir.path().join("missing"));
        assert!(matches!(
            c.load_cookie(),
            Err(ConfigError::CookieFile { .. })
        ));
    }
}

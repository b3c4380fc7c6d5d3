//! A 3-member etcd cluster on loopback (temporary data dirs, default fsync), driven through its
//! HTTP JSON gateway (`/v3/...`, base64 keys and values), for the comparison in `bench commits`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use verisim_faultkit::{NodeProcess, ProcessSpec, Sandbox};

use super::children::{self, reserve_port, wait_for};
use super::http::Http;

pub struct EtcdCluster {
    pub clients: Vec<String>,
    /// The members (the process kit's: killed and reaped when dropped, and by Ctrl-C).
    procs: Vec<NodeProcess>,
    pub version: String,
    // Last: removed after the processes are gone.
    _dir: Sandbox,
}

impl EtcdCluster {
    pub fn start(binary: &Path, members: usize) -> Result<Self, String> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("etcd (unknown version)")
            .to_string();
        let dir = Sandbox::new("verisim-bench-etcd-").map_err(|e| e.to_string())?;
        let reserved = (0..2 * members)
            .map(|_| reserve_port())
            .collect::<Result<Vec<_>, _>>()?;
        let ports: Vec<u16> = reserved
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        drop(reserved);
        let peer = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i]);
        let client = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial = (0..members)
            .map(|i| format!("e{i}={}", peer(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut procs = Vec::new();
        for i in 0..members {
            let spec = ProcessSpec::new(format!("etcd e{i}"), binary)
                .arg("--name")
                .arg(format!("e{i}"))
                .arg("--data-dir")
                .arg(dir.join(&format!("e{i}")))
                .arg("--listen-peer-urls")
                .arg(peer(i))
                .arg("--initial-advertise-peer-urls")
                .arg(peer(i))
                .arg("--listen-client-urls")
                .arg(client(i))
                .arg("--advertise-client-urls")
                .arg(client(i))
                .arg("--initial-cluster")
                .arg(&initial)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg("verisim-bench")
                .arg("--log-level")
                .arg("warn")
                .log(dir.join(&format!("e{i}.log")));
            procs.push(children::spawn(spec)?);
        }
        let c = Self {
            clients: (0..members).map(client).collect(),
            procs,
            version,
            _dir: dir,
        };
        c.wait_leader(Duration::from_secs(60))?;
        Ok(c)
    }

    /// The process ids of the members (for their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(children::pid).collect()
    }

    /// The client URL of the member that leads (every member must answer and agree).
    pub fn leader(&self) -> Option<String> {
        let http = Http::new(Duration::from_secs(2));
        let mut leader_id = None;
        let mut ids = Vec::new();
        for url in &self.clients {
            let r = http
                .post_json(&format!("{url}/v3/maintenance/status"), &json!({}))
                .ok()?;
            if !r.ok() {
                return None;
            }
            let me = as_u64(&r.body["header"]["member_id"])?;
            let leader = as_u64(&r.body["leader"])?;
            if leader == 0 || leader_id.is_some_and(|l| l != leader) {
                return None;
            }
            leader_id = Some(leader);
            ids.push((me, url.clone()));
        }
        let l = leader_id?;
        ids.into_iter().find(|(me, _)| *me == l).map(|(_, u)| u)
    }

    pub fn wait_leader(&self, timeout: Duration) -> Result<String, String> {
        wait_for("an etcd leader", timeout, || self.leader()).map_err(|e| {
            let logs: String = self
                .procs
                .iter()
                .map(|p| format!("== {} ==\n{}\n", p.spec().name, p.log_tail(1500)))
                .collect();
            format!("{e}\n{logs}")
        })
    }
}

/// The JSON gateway prints 64-bit integers as strings.
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// One etcd put through the JSON gateway.
pub fn put(http: &Http, client_url: &str, key: &str, value: &str) -> Result<(), String> {
    let body = json!({"key": base64(key.as_bytes()), "value": base64(value.as_bytes())});
    let r = http.post_json(&format!("{client_url}/v3/kv/put"), &body)?;
    if r.ok() {
        Ok(())
    } else {
        Err(format!("etcd put: {} {}", r.status, r.body))
    }
}

/// Standard base64 with padding (the gateway's encoding of `bytes` fields).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain:?}");
        }
    }

    #[test]
    fn gateway_integers_may_be_strings() {
        assert_eq!(as_u64(&json!("123")), Some(123));
        assert_eq!(as_u64(&json!(7)), Some(7));
        assert_eq!(as_u64(&json!(null)), None);
    }
}

//! `verisim dev` started as a user starts it, in a temporary directory: the local three-node
//! cluster the dev and SDK tests run against. Stopped (SIGTERM, then killed) when dropped.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use verisim_faultkit::{NodeProcess, ProcessSpec};

const BIN: &str = env!("CARGO_BIN_EXE_verisim");

/// A running `verisim dev` with its data in `<work>/d`.
pub struct DevCluster {
    /// `verisim dev` itself (the kit's process: stopped when dropped, killed at worst).
    pub process: NodeProcess,
    /// Node `i` (1..=3) serves HTTP on `http_base + i`.
    pub http_base: u16,
    /// What it printed up to `DEV READY`.
    pub printed: Vec<String>,
    // Last, so it is removed after the process is gone.
    pub work: tempfile::TempDir,
}

impl DevCluster {
    /// Starts `verisim dev --dir d` on free ports and waits (90 s at most) for `DEV READY`.
    pub fn start() -> Self {
        let work = tempfile::tempdir().expect("temp dir");
        let (cluster, http_base) = (port_base(), port_base());
        let spec = ProcessSpec::new("verisim dev", BIN)
            .args(["dev", "--dir", "d", "--cluster-port-base"])
            .arg(cluster.to_string())
            .arg("--http-port-base")
            .arg(http_base.to_string())
            .current_dir(work.path());
        let mut process = NodeProcess::spawn(spec).expect("start verisim dev");
        process
            .wait_line("DEV READY", Duration::from_secs(90), |l| {
                l.starts_with("DEV READY").then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let printed = process.stdout().to_vec();
        DevCluster {
            process,
            http_base,
            printed,
            work,
        }
    }

    /// The directory `verisim dev` runs in (its files are under `d/`).
    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// `http://127.0.0.1:<port>` of node `i` (1..=3).
    pub fn url(&self, i: u16) -> String {
        format!("http://127.0.0.1:{}", self.http_base + i)
    }

    /// The admin token `verisim dev` wrote.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir().join("d/admin-token"))
            .expect("d/admin-token")
            .trim()
            .to_string()
    }

    /// Sends `signal` to `verisim dev` itself.
    pub fn signal(&self, signal: Signal) {
        self.process
            .signal(signal)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        // SIGTERM, so `verisim dev` stops its nodes; SIGKILL after 20 s.
        if self.process.is_running() {
            let _ = self.process.terminate(Duration::from_secs(20));
        }
    }
}

/// Three consecutive free ports starting at base + 1, below the ephemeral range.
fn port_base() -> u16 {
    loop {
        let base = super::reserve_port().local_addr().expect("a port").port();
        if base < 65_000
            && (1..=3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

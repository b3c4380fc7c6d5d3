//! `verisim dev` started as a user starts it, in a temporary directory: the local three-node
//! cluster the dev and SDK tests run against. Stopped (SIGTERM, then killed) when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_verisim");

/// A running `verisim dev` with its data in `<work>/d`.
pub struct DevCluster {
    pub work: tempfile::TempDir,
    /// Node `i` (1..=3) serves HTTP on `http_base + i`.
    pub http_base: u16,
    /// What it printed up to `DEV READY`.
    pub printed: Vec<String>,
    pub child: Child,
}

impl DevCluster {
    /// Starts `verisim dev --dir d` on free ports and waits (90 s at most) for `DEV READY`.
    pub fn start() -> Self {
        let work = tempfile::tempdir().expect("temp dir");
        let (cluster, http_base) = (port_base(), port_base());
        let mut child = Command::new(BIN)
            .args([
                "dev",
                "--dir",
                "d",
                "--cluster-port-base",
                &cluster.to_string(),
                "--http-port-base",
                &http_base.to_string(),
            ])
            .current_dir(work.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start verisim dev");
        let stdout = child.stdout.take().expect("dev stdout");
        let mut dev = DevCluster {
            work,
            http_base,
            printed: Vec::new(),
            child,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let printed = &mut dev.printed;
        wait_for(
            "verisim dev to print DEV READY",
            Duration::from_secs(90),
            || {
                while let Ok(line) = rx.try_recv() {
                    printed.push(line);
                }
                printed
                    .iter()
                    .any(|l| l.starts_with("DEV READY"))
                    .then_some(())
            },
        );
        dev
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
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal verisim dev");
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
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

//! Driving `verisim-cluster-probe` processes from tests: start, read event lines with deadlines,
//! send commands, signal, and always reap.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const PROBE: &str = env!("CARGO_BIN_EXE_verisim-cluster-probe");

/// How long any single condition may take before the test fails. Generous: the machine is
/// shared, and tests wait for conditions rather than sleeping.
pub const WAIT: Duration = Duration::from_secs(30);

/// A free loopback address (the OS picks the port; we release it for the probe).
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr")
}

/// Flags for a fast-detecting test node.
pub fn fast_flags() -> Vec<String> {
    [
        "--heartbeat-interval-ms",
        "100",
        "--heartbeat-deadline-ms",
        "800",
        "--handshake-timeout-ms",
        "1000",
        "--backoff-min-ms",
        "50",
        "--backoff-max-ms",
        "400",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One probe process. Killed and reaped on drop.
pub struct Probe {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    pub log: Vec<String>,
    /// Lines read but not yet matched by an `expect`.
    pending: VecDeque<String>,
}

impl Probe {
    /// Start node `name` on `addr` with `extra` flags and wait for its READY line.
    pub fn start(
        name: &str,
        addr: SocketAddr,
        cookie: &str,
        seeds: &[SocketAddr],
        extra: &[String],
    ) -> Probe {
        let seeds: Vec<String> = seeds.iter().map(SocketAddr::to_string).collect();
        Self::start_listening(name, addr, addr, cookie, &seeds, extra)
    }

    /// Like `start`, listening on `listen` (e.g. `0.0.0.0:port`) while `addr` is the address the
    /// test reaches it at, with seeds as written (`host:port` or `name=host:port`).
    pub fn start_listening(
        name: &str,
        addr: SocketAddr,
        listen: SocketAddr,
        cookie: &str,
        seeds: &[String],
        extra: &[String],
    ) -> Probe {
        let mut cmd = Command::new(PROBE);
        cmd.args([
            "--name",
            name,
            "--listen",
            &listen.to_string(),
            "--cookie",
            cookie,
        ]);
        for s in seeds {
            cmd.args(["--seed", s]);
        }
        cmd.args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn probe");
        let stdout = child.stdout.take().expect("probe stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Probe {
            name: name.to_string(),
            addr,
            child,
            stdin,
            lines: rx,
            log: Vec::new(),
            pending: VecDeque::new(),
        };
        p.expect(|l| l.starts_with("READY "), WAIT);
        p
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait up to `within` for a line satisfying `pred`; return it. Panics (with the log) if the
    /// deadline passes or the process exits first.
    pub fn expect(&mut self, pred: impl Fn(&str) -> bool, within: Duration) -> String {
        match self.try_expect(pred, within) {
            Some(l) => l,
            None => panic!(
                "node {}: expected line not seen within {within:?}; log:\n{}",
                self.name,
                self.log.join("\n")
            ),
        }
    }

    /// Like `expect`, `None` on timeout. Lines are matched at most once each, in any order: a
    /// line read while waiting for something else stays available to later calls.
    pub fn try_expect(&mut self, pred: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        if let Some(i) = self.pending.iter().position(|l| pred(l)) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                    self.pending.push_back(line);
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "node {}: exited while waiting; log:\n{}",
                    self.name,
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Forget unmatched lines read so far (e.g. events of a phase the test is done with).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Send `command` until it answers with a line starting with `ok` (retrying on a line
    /// starting with `err`, e.g. while a replaced connection settles); returns the ok line.
    pub fn until_ok(&mut self, command: &str, ok: &str, err: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.send(command);
            let line = self.expect(|l| l.starts_with(ok) || l.starts_with(err), WAIT);
            if line.starts_with(ok) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: `{command}` kept failing; log:\n{}",
                self.name,
                self.log.join("\n")
            );
            // Polling a condition with a deadline: give the connection a moment to settle.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for `UP <node> <id>`; returns the connection id.
    pub fn expect_up(&mut self, node: &str) -> u64 {
        let prefix = format!("UP {node} ");
        let line = self.expect(|l| l.starts_with(&prefix), WAIT);
        line[prefix.len()..].trim().parse().expect("node id")
    }

    /// Wait for `DOWN <node> <reason>`; returns the reason.
    pub fn expect_down(&mut self, node: &str) -> String {
        let prefix = format!("DOWN {node} ");
        let line = self.expect(|l| l.starts_with(&prefix), WAIT);
        line[prefix.len()..].trim().to_string()
    }

    /// Whether any line read so far starts with `prefix`.
    pub fn saw(&self, prefix: &str) -> bool {
        self.log.iter().any(|l| l.starts_with(prefix))
    }

    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("probe stdin open");
        writeln!(stdin, "{command}").expect("write to probe");
        stdin.flush().expect("flush probe stdin");
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// `kill -9` and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // A stopped process must be continued to die of anything but SIGKILL; SIGKILL is enough.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Child processes of a benchmark: every one is registered while it runs, so Ctrl-C can kill them
//! all (the owning [`Child`] handle reaps it afterwards), and [`ChildProc`] kills and reaps on drop.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by Ctrl-C: loops stop, and waits fail fast.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Ctrl-C: SIGKILL every registered child (not yet reaped, so its pid cannot have been reused).
pub fn interrupt_all() {
    INTERRUPTED.store(true, Ordering::Relaxed);
    let pids: Vec<u32> = LIVE
        .lock()
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    for pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// Polls `f` every 10 ms until it returns `Some`, failing with `what` after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if interrupted() {
            return Err(format!("interrupted while waiting for {what}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running child whose stderr goes to `log` and whose stdout lines are forwarded to `lines`.
pub struct ChildProc {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl ChildProc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, String> {
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd.spawn().map_err(|e| format!("spawning {name}: {e}"))?;
        if let Ok(mut l) = LIVE.lock() {
            l.insert(child.id());
        }
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Self {
            name: name.to_string(),
            log: log.to_path_buf(),
            child,
            lines: rx,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() && !interrupted() => {
                    continue;
                }
                Err(_) => {
                    let exit = self.child.try_wait().ok().flatten();
                    return Err(format!(
                        "{} printed no `{prefix}` line (exit: {exit:?}); log tail:\n{}",
                        self.name,
                        tail(&self.log, 3000)
                    ));
                }
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(mut l) = LIVE.lock() {
            l.remove(&self.child.id());
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last bytes of a log and free loopback ports come from the fault-injection kit, which
/// `tests/` uses too.
pub use verisim_faultkit::tail;

/// A free loopback port below the kernel's ephemeral range ([`verisim_faultkit::reserve_port`]);
/// the listener holds it until dropped.
pub fn reserve_port() -> Result<std::net::TcpListener, String> {
    verisim_faultkit::reserve_port().map_err(|e| e.to_string())
}

/// A process's resident set size (`VmRSS` of `/proc/<pid>/status`), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_vm_rss(&text).ok_or_else(|| format!("{path} has no VmRSS line"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => Some(n * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tverisim\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn our_own_rss_is_positive() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}

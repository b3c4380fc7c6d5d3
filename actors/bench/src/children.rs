//! Child processes of a benchmark: `verisim node`s and etcd members are the process kit's
//! [`NodeProcess`]es (`verisim-faultkit`, which `tests/` and `verisim dev` use too): killed and
//! reaped when dropped, also on error, and all killed at once by Ctrl-C ([`interrupt_all`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use verisim_faultkit::{NodeProcess, ProcessSpec};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by Ctrl-C: loops stop, and waits fail fast.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Ctrl-C: SIGKILL every child the kit started and has not reaped ([`verisim_faultkit::kill_all`];
/// the owning handles reap them afterwards). A wait for a child's line then fails at once.
pub fn interrupt_all() {
    INTERRUPTED.store(true, Ordering::Relaxed);
    verisim_faultkit::kill_all();
}

/// Polls `f` (the kit's [`verisim_faultkit::wait_until`], every 10 ms) until it returns `Some`,
/// failing with `what` after `timeout`, or at once after Ctrl-C.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    verisim_faultkit::wait_until(what, timeout, || match f() {
        Some(v) => Some(Ok(v)),
        None => interrupted().then(|| Err(format!("interrupted while waiting for {what}"))),
    })
    .map_err(|e| e.to_string())?
}

/// Starts a child: stdin closed, stdout read for [`wait_line`], stderr appended to the spec's
/// log.
pub fn spawn(spec: ProcessSpec) -> Result<NodeProcess, String> {
    NodeProcess::spawn(spec).map_err(|e| e.to_string())
}

/// Starts `p` (again, on the same spec), as [`spawn`] does.
pub fn start(p: &mut NodeProcess) -> Result<(), String> {
    p.start().map_err(|e| e.to_string())
}

/// Waits for a stdout line starting with `prefix` and returns it; fails at once if the child
/// exits (Ctrl-C kills it), with the tail of its log.
pub fn wait_line(p: &mut NodeProcess, prefix: &str, timeout: Duration) -> Result<String, String> {
    p.wait_line(&format!("a `{prefix}` line"), timeout, |l| {
        l.starts_with(prefix).then(|| l.to_owned())
    })
    .map_err(|e| format!("{e}; log tail:\n{}", p.log_tail(3000)))
}

/// The process id of a running child, for `/proc`.
pub fn pid(p: &NodeProcess) -> Option<u32> {
    p.pid().and_then(|pid| u32::try_from(pid.as_raw()).ok())
}

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

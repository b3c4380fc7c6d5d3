//! Node processes: a program started with its arguments, environment and data directory, that
//! a test can SIGKILL, SIGSTOP/SIGCONT, terminate and restart on the same data directory. Its
//! stdout lines are collected (to wait for a readiness line), its stderr appended to a log
//! file. Dropping a [`NodeProcess`] kills and reaps it, also while a failed assertion unwinds.
//!
//! Beyond tests, the same processes serve a tool that runs a cluster for a person: a benchmark's
//! Ctrl-C handler kills every process the kit started ([`kill_all`]), a local cluster is stopped
//! gracefully all at once ([`terminate_all`]: SIGTERM to each, one shared deadline, SIGKILL for
//! the rest), and a [`Sandbox`] can be kept for reading the logs afterwards ([`Sandbox::keep`]).
//!
//! ```
//! use std::time::Duration;
//! use verisim_faultkit::{NodeProcess, ProcessSpec};
//!
//! let spec = ProcessSpec::new("sleeper", "sh").args(["-c", "echo READY port=4000; exec sleep 600"]);
//! let mut p = NodeProcess::spawn(spec)?;
//! let port = p.wait_line("the READY line", Duration::from_secs(10), |l| {
//!     l.strip_prefix("READY port=").map(str::to_string)
//! })?;
//! assert_eq!(port, "4000");
//! p.sigstop()?;
//! assert!(p.is_paused());
//! p.sigcont()?;
//! p.restart()?; // SIGKILL, then the same program again (same data directory)
//! assert!(p.terminate(Duration::from_secs(5)).is_ok());
//! # Ok::<(), verisim_faultkit::FaultError>(())
//! ```

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::FaultError;
use crate::wait::POLL;

/// How long a SIGSTOP or SIGCONT may take to show in the process's state.
pub const SIGNAL_SETTLE: Duration = Duration::from_secs(5);

/// The process ids of every process the kit started and has not reaped, for [`kill_all`]. A pid
/// leaves the set, under its lock, *before* its process is reaped: until the reap the kernel
/// keeps the pid, so [`kill_all`] (which signals under the same lock) never strikes a pid that
/// has been given to another process since.
static LIVE: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<i32>> {
    // The set stays consistent whatever panicked while holding it (inserts and removes only).
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// SIGKILLs every process the kit started in this program and has not reaped yet, wherever its
/// [`NodeProcess`] is (another thread may be blocked in [`NodeProcess::wait_line`] on it: the
/// wait then fails at once, the process having exited). Meant for a tool's Ctrl-C handler; the
/// handles still reap their processes (when dropped, or by [`NodeProcess::wait_exit`]). Returns
/// how many processes were signalled.
///
/// Not for tests that share a test binary: it strikes the other tests' processes too.
pub fn kill_all() -> usize {
    let live = live();
    for &pid in live.iter() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    live.len()
}

/// Stops several processes at once: SIGTERM to each (after SIGCONT if paused), then one shared
/// deadline, `timeout` from now, for all of them to exit; SIGKILL for those still running then.
/// The outcome of each, in order, as [`NodeProcess::terminate`] reports it: `Ok(status)` if it
/// exited by itself, [`FaultError::Timeout`] if it had to be killed,
/// [`FaultError::ProcessNotRunning`] if it was not running.
///
/// Stopping them one by one with [`NodeProcess::terminate`] would let each wait in turn, and a
/// cluster whose members shut down in parallel would take longer than the slowest of them.
pub fn terminate_all<'a>(
    processes: impl IntoIterator<Item = &'a mut NodeProcess>,
    timeout: Duration,
) -> Vec<Result<ExitStatus, FaultError>> {
    let mut processes: Vec<&mut NodeProcess> = processes.into_iter().collect();
    let signalled: Vec<Result<(), FaultError>> = processes
        .iter_mut()
        .map(|p| {
            if p.paused {
                let _ = p.signal(Signal::SIGCONT);
                p.paused = false;
            }
            p.signal(Signal::SIGTERM)
        })
        .collect();
    let deadline = Instant::now() + timeout;
    processes
        .into_iter()
        .zip(signalled)
        .map(|(p, signalled)| {
            signalled?;
            p.wait_exit(deadline.saturating_duration_since(Instant::now()))
                .ok_or_else(|| {
                    p.kill9();
                    FaultError::Timeout {
                        what: format!("`{}` to exit after SIGTERM (killed)", p.spec.name),
                        after: timeout,
                    }
                })
        })
        .collect()
}

/// How to start a process. Fields are public so a test can change them between restarts
/// (through [`NodeProcess::spec_mut`]).
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// A name for messages.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables set on top of the test's own.
    pub env: Vec<(OsString, OsString)>,
    /// Environment variables removed from the test's own.
    pub env_remove: Vec<OsString>,
    /// The working directory (default: the test's).
    pub cwd: Option<PathBuf>,
    /// The process's data directory: created before each start, kept across restarts (give
    /// it to the program in [`args`](Self::args) or [`env`](Self::env) as it expects).
    pub data_dir: Option<PathBuf>,
    /// Where stderr is appended (default: discarded).
    pub log: Option<PathBuf>,
}

impl ProcessSpec {
    /// `program`, named `name`, with no arguments.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            data_dir: None,
            log: None,
        }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes an environment variable the test has.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env_remove.push(key.into());
        self
    }

    /// The working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The data directory (created before each start).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The file stderr is appended to.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }
}

/// A started (or stopped) process; see the [module documentation](self). `Send` and `Sync`.
#[derive(Debug)]
pub struct NodeProcess {
    spec: ProcessSpec,
    child: Option<Child>,
    paused: bool,
    /// Behind a mutex only so that a `NodeProcess` is `Sync` (a test shares its cluster of
    /// processes with its client threads); every use is through `&mut self`.
    lines: Option<Mutex<mpsc::Receiver<String>>>,
    stdout: Vec<String>,
}

impl NodeProcess {
    /// A process not started yet.
    pub fn new(spec: ProcessSpec) -> Self {
        Self {
            spec,
            child: None,
            paused: false,
            lines: None,
            stdout: Vec::new(),
        }
    }

    /// Starts a process.
    pub fn spawn(spec: ProcessSpec) -> Result<Self, FaultError> {
        let mut p = Self::new(spec);
        p.start()?;
        Ok(p)
    }

    /// How it is started.
    pub fn spec(&self) -> &ProcessSpec {
        &self.spec
    }

    /// How it is started, to change before the next start.
    pub fn spec_mut(&mut self) -> &mut ProcessSpec {
        &mut self.spec
    }

    /// Starts the process (after creating its data directory). Fails if it runs already.
    pub fn start(&mut self) -> Result<(), FaultError> {
        if self.child.is_some() {
            return Err(FaultError::ProcessRunning(self.spec.name.clone()));
        }
        let name = &self.spec.name;
        if let Some(dir) = &self.spec.data_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| FaultError::io(format!("creating {}", dir.display()), e))?;
        }
        let stderr = match &self.spec.log {
            Some(path) => Stdio::from(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| FaultError::io(format!("opening {}", path.display()), e))?,
            ),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&self.spec.program);
        cmd.args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for k in &self.spec.env_remove {
            cmd.env_remove(k);
        }
        cmd.envs(self.spec.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.spec.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().map_err(|e| {
            FaultError::io(
                format!("starting `{name}` ({})", self.spec.program.display()),
                e,
            )
        })?;
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-stdout"))
                .spawn(move || {
                    // Drains stdout until the process exits, so it never blocks on a full pipe.
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FaultError::io("starting a stdout reader", e));
            }
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            live().insert(pid);
        }
        self.child = Some(child);
        self.lines = Some(Mutex::new(rx));
        self.stdout.clear();
        self.paused = false;
        Ok(())
    }

    /// Waits for a stdout line (of this start) that `pick` accepts, and returns what it picked.
    /// Lines read while waiting stay in [`stdout`](Self::stdout). Fails early, with the exit
    /// status, if the process exits first.
    pub fn wait_line<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&str) -> Option<T>,
    ) -> Result<T, FaultError> {
        if let Some(v) = self.stdout.iter().find_map(|l| pick(l)) {
            return Ok(v);
        }
        let Some(rx) = self.lines.as_mut() else {
            return Err(FaultError::ProcessNotRunning(self.spec.name.clone()));
        };
        let rx = rx.get_mut().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let v = pick(&line);
                    self.stdout.push(line);
                    if let Some(v) = v {
                        return Ok(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(FaultError::Timeout {
                        what: format!("`{}` to print {what}", self.spec.name),
                        after: timeout,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process is exiting; reap it for its status.
                    let status = self.wait_exit(Duration::from_secs(5));
                    return Err(FaultError::ProcessExited {
                        name: self.spec.name.clone(),
                        status: status
                            .map_or("still running, stdout closed".into(), |s| s.to_string()),
                        what: what.to_string(),
                    });
                }
            }
        }
    }

    /// The stdout lines of this start read so far by [`wait_line`](Self::wait_line), and any
    /// that arrived since.
    pub fn stdout(&mut self) -> &[String] {
        if let Some(rx) = self.lines.as_mut() {
            let rx = rx.get_mut().unwrap_or_else(|e| e.into_inner());
            self.stdout.extend(rx.try_iter());
        }
        &self.stdout
    }

    /// Waits up to `timeout` for the process to exit by itself; its status if it did (the
    /// process is then reaped and no longer running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            // Under the lock: `kill_all` must not signal the pid once it may be reaped.
            let mut live = live();
            match c.try_wait() {
                Ok(Some(status)) => {
                    if let Ok(pid) = i32::try_from(c.id()) {
                        live.remove(&pid);
                    }
                    drop(live);
                    self.child = None;
                    self.paused = false;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    drop(live);
                    std::thread::sleep(POLL);
                }
                _ => return None,
            }
        }
    }

    /// Whether a process was started and not yet killed or reaped.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether it is SIGSTOPped.
    pub fn is_paused(&self) -> bool {
        self.child.is_some() && self.paused
    }

    /// Its process id, while running.
    pub fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .map(Pid::from_raw)
    }

    /// Sends `signal` to the running process.
    pub fn signal(&self, signal: Signal) -> Result<(), FaultError> {
        let pid = self
            .pid()
            .ok_or_else(|| FaultError::ProcessNotRunning(self.spec.name.clone()))?;
        kill(pid, signal).map_err(|source| FaultError::Signal {
            signal: signal.to_string(),
            process: self.spec.name.clone(),
            source,
        })
    }

    /// SIGSTOP: the process stops running (it keeps its sockets; peers see silence). A signal
    /// takes effect a moment after it is sent; on Linux this returns once the kernel reports the
    /// process stopped (`/proc/<pid>/stat`), within [`SIGNAL_SETTLE`].
    pub fn sigstop(&mut self) -> Result<(), FaultError> {
        self.signal(Signal::SIGSTOP)?;
        self.paused = true;
        self.wait_state("stopped", |state| state == 'T')
    }

    /// SIGCONT: it runs again (on Linux, returns once it is no longer reported stopped).
    pub fn sigcont(&mut self) -> Result<(), FaultError> {
        self.signal(Signal::SIGCONT)?;
        self.paused = false;
        self.wait_state("running again", |state| state != 'T')
    }

    /// Waits until the kernel reports a state `ok` accepts; without `/proc` (not Linux), at once.
    fn wait_state(&self, what: &str, ok: impl Fn(char) -> bool) -> Result<(), FaultError> {
        let Some(pid) = self.pid() else {
            return Err(FaultError::ProcessNotRunning(self.spec.name.clone()));
        };
        let path = format!("/proc/{pid}/stat");
        if !Path::new(&path).exists() {
            return Ok(());
        }
        let what = format!("`{}` to be {what}", self.spec.name);
        crate::wait::wait_until(&what, SIGNAL_SETTLE, || {
            let stat = std::fs::read_to_string(&path).ok()?;
            // `pid (comm) state ...`: comm may hold spaces and parentheses; the state follows
            // the last `)`.
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            ok(state).then_some(())
        })
    }

    /// SIGKILL and reap (nothing to do if it is not running). Its data directory stays.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                live().remove(&pid);
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// SIGTERM (after SIGCONT if paused) and wait up to `timeout` for it to exit; SIGKILL after
    /// that. `Ok(status)` if it exited by itself, [`FaultError::Timeout`] if it had to be
    /// killed, [`FaultError::ProcessNotRunning`] if it was not running.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, FaultError> {
        if self.paused {
            let _ = self.signal(Signal::SIGCONT);
        }
        self.signal(Signal::SIGTERM)?;
        match self.wait_exit(timeout) {
            Some(status) => Ok(status),
            None => {
                self.kill9();
                Err(FaultError::Timeout {
                    what: format!("`{}` to exit after SIGTERM (killed)", self.spec.name),
                    after: timeout,
                })
            }
        }
    }

    /// SIGKILL, then start again with the same spec (and data directory).
    pub fn restart(&mut self) -> Result<(), FaultError> {
        self.kill9();
        self.start()
    }

    /// The last `max` bytes of its log ([`ProcessSpec::log`]), for a failure message; see
    /// [`tail`].
    pub fn log_tail(&self, max: u64) -> String {
        match &self.spec.log {
            Some(path) => tail(path, max),
            None => String::from("<no log>"),
        }
    }
}

// A test shares its processes with its client threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<NodeProcess>();
};

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last `max` bytes of a file (a node's log, for a failure message), lossily decoded;
/// `<no log>` if it cannot be read.
pub fn tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::from("<no log>");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A temporary directory for a test's processes (data directories, logs, config files),
/// removed when dropped (unless [kept](Self::keep)). Drop it after the processes (declare it
/// first, or hold it in a struct field after them), so nothing writes into it while it is
/// removed.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh directory named `prefix…` under the system's temporary directory.
    pub fn new(prefix: &str) -> Result<Self, FaultError> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| FaultError::io("creating a temporary directory", e))?;
        Ok(Self { dir })
    }

    /// Keeps the directory when dropped (`true`), for reading the logs afterwards; the caller
    /// says where it is. `false` removes it again on drop.
    pub fn keep(&mut self, keep: bool) {
        self.dir.disable_cleanup(keep);
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside it (not created: a data directory is created by the process's start).
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

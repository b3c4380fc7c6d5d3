//! The kit's one error type.

use std::time::Duration;

use thiserror::Error;
use verisim_supervision::SupervisorError;

/// What went wrong while injecting a fault or waiting for its outcome.
#[derive(Debug, Error)]
pub enum FaultError {
    /// A condition did not hold before its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The condition, in words.
        what: String,
        /// How long it was waited for.
        after: Duration,
    },
    /// No child at this supervision path (`"stores/vector"`).
    #[error("no child at supervision path `{0}`")]
    NoSuchPath(String),
    /// The child at this path has no running incarnation to kill.
    #[error("the child at `{0}` is not running")]
    NotRunning(String),
    /// No actor is registered under this ractor name.
    #[error("no actor is registered as `{0}`")]
    NoSuchName(String),
    /// A supervisor call failed.
    #[error("supervisor: {0}")]
    Supervisor(#[from] SupervisorError),
    /// A tree did not have the expected shape, restart counts or states.
    #[error("{0}")]
    Mismatch(String),
    /// An I/O operation failed (binding, connecting, spawning, files).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be sent.
    #[error("signal {signal} to `{process}`: {source}")]
    Signal {
        /// The signal's name.
        signal: String,
        /// The process's name.
        process: String,
        /// The errno.
        #[source]
        source: nix::errno::Errno,
    },
    /// The operation needs a running process.
    #[error("process `{0}` is not running")]
    ProcessNotRunning(String),
    /// The process is already running (start twice).
    #[error("process `{0}` is already running")]
    ProcessRunning(String),
    /// The process exited while it was waited for.
    #[error("process `{name}` exited ({status}) while waiting for {what}")]
    ProcessExited {
        /// The process's name.
        name: String,
        /// Its exit status, as text.
        status: String,
        /// What was being waited for.
        what: String,
    },
    /// A relay setting that needs frame mode was asked of a byte-mode relay.
    #[error("dropping whole messages needs a relay in ractor_cluster frame mode (Relay::framed)")]
    NotFramed,
    /// A probability outside `0.0..=1.0`.
    #[error("probability {0} is not within 0..=1")]
    BadProbability(f64),
    /// An HTTP answer that could not be read.
    #[error("bad HTTP answer from {addr}: {why}")]
    Http {
        /// The server's address.
        addr: String,
        /// What was wrong.
        why: String,
    },
}

impl FaultError {
    /// An [`Io`](Self::Io) error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

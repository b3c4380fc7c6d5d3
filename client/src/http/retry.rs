//! Retry timing.

use std::time::Duration;

use verisim_vocab::backoff;

/// How calls are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each attempt, with ±50 % jitter.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Longest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
    /// Per-attempt timeout of the whole request.
    pub request_timeout: Duration,
    /// Per-attempt connect timeout.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (0-based).
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = backoff::exponential(self.initial_backoff, self.max_backoff, attempt);
        backoff::spread(base, self.max_backoff, rand::random::<f64>())
    }
}

/// Errors after which the request may not have reached (or been answered by) the node: the same
/// request, same id, can go to another node.
pub(super) fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

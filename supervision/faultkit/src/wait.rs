//! Waiting for a condition with a deadline, never a bare sleep.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::FaultError;

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(10);

/// Polls `f` (from a plain thread) until it returns `Some`, or fails with
/// [`FaultError::Timeout`] naming `what` after `timeout`.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// let three = verisim_faultkit::wait_until("n to reach 3", Duration::from_secs(1), || {
///     n += 1;
///     (n >= 3).then_some(n)
/// })?;
/// assert_eq!(three, 3);
/// # Ok::<(), verisim_faultkit::FaultError>(())
/// ```
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    f: impl FnMut() -> Option<T>,
) -> Result<T, FaultError> {
    wait_until_every(what, timeout, POLL, f)
}

/// Like [`wait_until`], polling every `poll` (a condition that costs a request to a node may
/// want fewer polls than the default [`POLL`]).
pub fn wait_until_every<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, FaultError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timeout_error(what, timeout));
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

/// Like [`wait_until`], for async conditions (inside a tokio runtime). Each poll is itself
/// bounded by what is left of the deadline, so a condition that hangs (say, a call to a busy
/// supervisor) cannot outlive it.
pub async fn wait_until_async<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut f: F,
) -> Result<T, FaultError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(v)) = tokio::time::timeout_at(deadline, f()).await {
            return Ok(v);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(timeout_error(what, timeout));
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

fn timeout_error(what: &str, after: Duration) -> FaultError {
    FaultError::Timeout {
        what: what.to_string(),
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_never_holds_times_out_naming_it() {
        let err = wait_until("never", Duration::from_millis(30), || None::<()>).unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_async_condition_is_cut_off_by_the_deadline() {
        let err = wait_until_async("a hang", Duration::from_millis(50), || {
            std::future::pending::<Option<()>>()
        })
        .await
        .unwrap_err();
        assert!(matches!(err, FaultError::Timeout { .. }), "{err}");
    }
}

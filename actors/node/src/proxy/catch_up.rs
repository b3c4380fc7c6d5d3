//! Catching up with the quorum before refusing a client or window id this replica does not know
//! (it may have been committed through another node a moment ago). The caller is not
//! authenticated yet, so the Raft read barrier this costs is single-flight and rate-limited:
//! callers share one barrier, and at most one starts per [`MIN_INTERVAL`] on a node, however many
//! requests with random ids arrive.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verisim_client::wire::ErrorCode;

use super::error::ApiError;

/// The least time between the starts of two catch-up barriers on one node.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// The last barrier: when it started and how it ended.
#[derive(Default)]
struct Last {
    started_at: Option<Instant>,
    outcome: Option<Result<(), (ErrorCode, String)>>,
}

/// The gate every pre-authentication read barrier goes through.
pub struct CatchUp {
    min_interval: Duration,
    // Held across the barrier: that is what makes it single-flight.
    last: tokio::sync::Mutex<Last>,
    started: AtomicU64,
}

impl std::fmt::Debug for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchUp")
            .field("min_interval", &self.min_interval)
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}

impl Default for CatchUp {
    fn default() -> Self {
        Self::new(MIN_INTERVAL)
    }
}

impl CatchUp {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last: tokio::sync::Mutex::new(Last::default()),
            started: AtomicU64::new(0),
        }
    }

    /// How many barriers this gate started (`verisim_proxy_catch_up_barriers_total`).
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Runs `barrier` unless one that started after this call already ran, whose outcome is then
    /// shared: a barrier that started earlier may have read the leader's index before the write
    /// this caller depends on, so it does not count. Waits for the one in flight, and keeps
    /// [`MIN_INTERVAL`] between starts.
    pub async fn run<F, Fut>(&self, barrier: F) -> Result<(), ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), ApiError>>,
    {
        let arrived = Instant::now();
        let mut last = self.last.lock().await;
        if let (Some(at), Some(outcome)) = (last.started_at, &last.outcome)
            && at >= arrived
        {
            return outcome
                .clone()
                .map_err(|(code, message)| ApiError::new(code, message));
        }
        if let Some(at) = last.started_at {
            tokio::time::sleep_until((at + self.min_interval).into()).await;
        }
        last.started_at = Some(Instant::now());
        last.outcome = None;
        self.started.fetch_add(1, Ordering::Relaxed);
        let outcome = barrier().await;
        last.outcome = Some(
            outcome
                .as_ref()
                .map(|_| ())
                .map_err(|e| (e.code, e.message.clone())),
        );
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A fake barrier that counts its runs, takes `took`, and records when it started.
    fn barrier(
        runs: &Arc<AtomicU64>,
        took: Duration,
    ) -> impl Future<Output = Result<(), ApiError>> + use<> {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(took).await;
            Ok(())
        }
    }

    /// Starts a barrier that runs until the returned sender is used; returns once it is in flight.
    async fn hold(
        gate: &Arc<CatchUp>,
    ) -> (
        tokio::task::JoinHandle<Result<(), ApiError>>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let gate = gate.clone();
        let holder = tokio::spawn(async move {
            gate.run(|| async move {
                let _ = entered_tx.send(());
                let _ = release_rx.await;
                Ok(())
            })
            .await
        });
        entered_rx.await.unwrap();
        (holder, release_tx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn five_hundred_concurrent_callers_start_a_bounded_number_of_barriers() {
        let gate = Arc::new(CatchUp::new(Duration::from_millis(20)));
        let runs = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let (gate, runs) = (gate.clone(), runs.clone());
                tokio::spawn(async move {
                    gate.run(|| barrier(&runs, Duration::from_millis(5)))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let n = runs.load(Ordering::Relaxed);
        assert_eq!(n, gate.started());
        // One start per interval at most (plus the first), whatever the scheduling.
        let bound = elapsed.as_millis() as u64 / 20 + 1;
        assert!(n >= 1 && n <= bound, "{n} barriers in {elapsed:?}");
        assert!(n < 500 / 5, "{n} barriers for 500 callers");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_arriving_during_a_barrier_waits_for_one_started_after_it() {
        let gate = Arc::new(CatchUp::new(Duration::from_millis(1)));
        let (first, release_tx) = hold(&gate).await;
        // The first barrier is in flight: this caller arrived after it started.
        let second_ran = Arc::new(AtomicU64::new(0));
        let second = {
            let (gate, ran) = (gate.clone(), second_ran.clone());
            tokio::spawn(async move {
                gate.run(|| async move {
                    ran.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
                .await
            })
        };
        release_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(second_ran.load(Ordering::Relaxed), 1);
        assert_eq!(gate.started(), 2);
    }

    #[tokio::test]
    async fn callers_that_arrived_before_a_failed_barrier_share_its_error() {
        let gate = Arc::new(CatchUp::new(Duration::from_millis(1)));
        // Hold the gate so that the next callers queue before the failing barrier starts.
        let (holder, release_tx) = hold(&gate).await;
        let runs = Arc::new(AtomicU64::new(0));
        let mut waiters: Vec<_> = (0..10)
            .map(|_| {
                let runs = runs.clone();
                Box::pin(gate.run(|| async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                    Err(ApiError::new(ErrorCode::NoQuorum, "no leader"))
                }))
            })
            .collect();
        // Polled once: each has arrived and queues on the gate before the failing barrier starts.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for w in &mut waiters {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        release_tx.send(()).unwrap();
        holder.await.unwrap().unwrap();
        for w in waiters {
            let e = w.await.unwrap_err();
            assert_eq!(e.code, ErrorCode::NoQuorum);
        }
        assert_eq!(
            runs.load(Ordering::Relaxed),
            1,
            "one barrier for ten callers"
        );
    }
}

//! Pausing an actor's processing: a [`Gate`] its handler passes through.
//!
//! ractor has no way to suspend an actor from outside, and a message that blocks an actor only
//! blocks it once it is dequeued. So the pause is cooperative, and honest about it: the
//! application gives its actor a `Gate` (in its arguments, or from a place the test can reach)
//! and calls [`Gate::pass`] at the start of `handle` (or wherever a pause should bite). In
//! production the gate is never closed and `pass` costs one atomic load. In a test,
//! [`Gate::close`] makes the next handler that reaches it wait (its mailbox fills up behind it,
//! as if the actor were stuck), [`Gate::wait_held`] waits until one is actually held there, and
//! [`Gate::open`] lets everything through again.
//!
//! What a held handler still does: ractor's `kill` aborts it at once (the actor dies); `stop`
//! waits for it, so a stop request waits for the gate to open; supervision events are handled
//! only after it, as any message is.
//!
//! ```
//! use std::time::Duration;
//! use verisim_faultkit::Gate;
//! # #[tokio::main]
//! # async fn main() -> Result<(), verisim_faultkit::FaultError> {
//! let gate = Gate::new();
//! gate.close();
//! let g = gate.clone();
//! let handler = tokio::spawn(async move { g.pass().await; "handled" });
//! gate.wait_held(1, Duration::from_secs(5)).await?; // the handler is stuck at the gate
//! gate.open();
//! assert_eq!(handler.await.ok(), Some("handled"));
//! assert_eq!(gate.passed(), 1);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::FaultError;
use crate::wait::wait_until_async;

/// A pause point for an actor's handlers. Cloning shares the gate.
#[derive(Clone, Debug)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    open: watch::Sender<bool>,
    held: AtomicUsize,
    passed: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    /// An open gate.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                open: watch::Sender::new(true),
                held: AtomicUsize::new(0),
                passed: AtomicU64::new(0),
            }),
        }
    }

    /// Passes the gate: at once when it is open, otherwise once it opens.
    pub async fn pass(&self) {
        if !*self.inner.open.borrow() {
            let _held = Held::new(&self.inner.held);
            let mut rx = self.inner.open.subscribe();
            // The sender lives in `self`, so the channel cannot close while we wait.
            let _ = rx.wait_for(|open| *open).await;
        }
        self.inner.passed.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes the gate: handlers that reach it wait until it opens.
    pub fn close(&self) {
        self.inner.open.send_replace(false);
    }

    /// Opens the gate, releasing every held handler.
    pub fn open(&self) {
        self.inner.open.send_replace(true);
    }

    /// Whether the gate is closed.
    pub fn is_closed(&self) -> bool {
        !*self.inner.open.borrow()
    }

    /// How many handlers wait at the gate now.
    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::SeqCst)
    }

    /// How many times the gate was passed.
    pub fn passed(&self) -> u64 {
        self.inner.passed.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` handlers wait at the gate.
    pub async fn wait_held(&self, n: usize, timeout: Duration) -> Result<(), FaultError> {
        wait_until_async(
            &format!("{n} handler(s) held at the gate"),
            timeout,
            move || async move { (self.held() >= n).then_some(()) },
        )
        .await
    }
}

/// Counts a waiting handler, also when its future is dropped (the actor was killed).
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::SeqCst);
        Self(c)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

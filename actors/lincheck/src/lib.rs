//! Linearizability checking for client histories (Wing–Gong / Porcupine style).
//!
//! Record what each client asked and when it got its answer in a [`History`], then
//! [`check()`] it against a [`Model`] — the key-value register model [`KvModel`] ships here. The
//! history is split into independent partitions (one per key for [`KvModel`]), and each is
//! searched for a linearization with the Wing–Gong–Lowe algorithm, pruned by a cache of
//! (linearized set, model state) pairs. The verdict is [`Verdict::Linearizable`],
//! [`Verdict::NotLinearizable`] with the key, the longest linearizable prefix and a minimal set
//! of operations that cannot be linearized, or [`Verdict::Unknown`] if the caller's budget
//! ([`CheckOptions`]) ran out: a check never runs unbounded.
//!
//! Operations whose client never learned the outcome are [`Outcome::Unknown`]: they may take
//! effect at any time after their invocation, or never. Operations the system refused are
//! [`Outcome::Failed`] and are left out.
//!
//! ```
//! use verisim_lincheck::{check, CheckOptions, KvHistory, KvInput, KvModel, KvOutput};
//!
//! let mut history: KvHistory = KvHistory::new();
//! // Client 1 writes x = 1 during [0, 10]; client 2 reads during [5, 15] and sees it.
//! let w = history.invoke(1, KvInput::put("x".into(), "1".into()), 0);
//! let r = history.invoke(2, KvInput::get("x".into()), 5);
//! history.complete(w, KvOutput::Ok, 10)?;
//! history.complete(r, KvOutput::Value(Some("1".into())), 15)?;
//! // Client 3 reads later, after both returned, and sees nothing: a stale read.
//! let stale = history.invoke(3, KvInput::get("x".into()), 20);
//! history.complete(stale, KvOutput::Value(None), 25)?;
//!
//! let report = check(&KvModel::new(), &history, &CheckOptions::default())?;
//! let violation = report.verdict.violation().expect("a stale read is not linearizable");
//! assert_eq!(violation.partition, "key \"x\"");
//! // The core: client 2 saw "1", then client 3 saw nothing, with no delete in between
//! // (whenever the put took effect).
//! let core: Vec<usize> = violation.core.iter().map(|op| op.index).collect();
//! assert_eq!(core, vec![1, 2]);
//! println!("{}", report.verdict);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod error;
mod history;
mod kv;
mod model;
mod report;
mod search;

pub use check::{CheckOptions, check};
pub use error::{CheckError, HistoryError};
pub use history::{History, OpId, Operation, Outcome};
pub use kv::{KvHistory, KvInput, KvModel, KvOperation, KvOutput};
pub use model::{Model, Partition};
pub use report::{
    Candidate, CheckReport, Exhaustion, Incomplete, LinearizedStep, OpSummary, Stats, Verdict,
    Violation,
};

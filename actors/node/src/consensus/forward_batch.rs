//! Proposals a follower forwards to the leader, batched: every proposal queued for one leader while
//! a batch to it is on its way leaves in the next one, so a busy follower sends one sealed message
//! (one seal, one ractor_cluster frame, one answer) for many proposals instead of one each.
//!
//! No timer: a proposal to an idle leader leaves at once, alone. At most [`BATCHES_IN_FLIGHT`]
//! batches are on their way to one leader; whatever arrives meanwhile waits for the next. Each
//! proposal keeps its own answer, as it would alone: the leader proposes the batch's commands
//! together (one Raft append, one fsync, when they arrive together) and answers each.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_bytes::ByteBuf;
use tokio::sync::oneshot;
use tokio::time::Instant;
use verisim_raft::NodeId;

use super::actor::{Applied, ConsensusError};
use super::forwarded::{ForwardReply, Forwarded};
use crate::telemetry::TELEMETRY;

/// Batches on their way to one leader at once.
pub const BATCHES_IN_FLIGHT: usize = 2;
/// Proposals in one batch, at most (the leader refuses a larger batch).
pub const MAX_BATCH_PROPOSALS: usize = 256;
/// Bytes of commands in one batch, at most, unless one command alone is larger (it goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// What the leader answers a batch: one answer per proposal, in order, or one error for the whole
/// batch (it could not be read).
pub type ForwardBatchReply = Result<Vec<ForwardReply>, ConsensusError>;

/// How a batch went: answered (one answer per proposal), unanswered (it may have been proposed), or
/// never sent.
#[derive(Debug)]
pub enum BatchOutcome {
    Answered(ForwardBatchReply),
    /// Sent, no answer in time: each proposal may still commit.
    Unanswered(String),
    /// Not sent: nothing was proposed.
    NotSent(String),
}

/// Sends one batch of commands to a leader, waiting for its answer for at most the given time.
pub type SendBatch = Arc<
    dyn Fn(NodeId, Vec<ByteBuf>, Duration) -> Pin<Box<dyn Future<Output = BatchOutcome> + Send>>
        + Send
        + Sync,
>;

struct Waiting {
    command: ByteBuf,
    deadline: Instant,
    answer: oneshot::Sender<Result<Applied, ConsensusError>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    in_flight: usize,
}

/// The per-leader queues of forwarded proposals. Cheap to share (`Arc`).
pub struct ProposalBatcher {
    send: SendBatch,
    queues: Mutex<HashMap<NodeId, Queue>>,
}

impl ProposalBatcher {
    pub fn new(send: SendBatch) -> Arc<Self> {
        Arc::new(Self {
            send,
            queues: Mutex::default(),
        })
    }

    /// Proposes `command` at `leader`, in the next batch to it; waits at most `timeout`. A
    /// proposal still queued when its caller stops waiting is never sent.
    pub async fn propose(
        self: &Arc<Self>,
        leader: NodeId,
        command: Vec<u8>,
        timeout: Duration,
    ) -> Result<Applied, ConsensusError> {
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        self.lock()
            .entry(leader)
            .or_default()
            .waiting
            .push_back(Waiting {
                command: ByteBuf::from(command),
                deadline,
                answer: tx,
            });
        self.pump(leader);
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            // The sender went without answering: only when the runtime shuts down.
            Ok(Err(_)) => Err(ConsensusError::Unknown(
                "the forwarding task stopped".into(),
            )),
            // Possibly already on its way (or proposed): the outcome is unknown.
            Err(_) => Err(ConsensusError::Unknown(format!(
                "no answer from node {leader} before the deadline"
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends what waits for `leader`, while fewer than [`BATCHES_IN_FLIGHT`] batches are out.
    fn pump(self: &Arc<Self>, leader: NodeId) {
        loop {
            let batch = {
                let mut queues = self.lock();
                let Some(q) = queues.get_mut(&leader) else {
                    return;
                };
                if q.in_flight >= BATCHES_IN_FLIGHT {
                    return;
                }
                let batch = take_batch(&mut q.waiting);
                if batch.is_empty() {
                    if q.in_flight == 0 {
                        queues.remove(&leader);
                    }
                    return;
                }
                q.in_flight += 1;
                batch
            };
            let me = Arc::clone(self);
            tokio::spawn(async move {
                me.send_batch(leader, batch).await;
                if let Some(q) = me.lock().get_mut(&leader) {
                    q.in_flight = q.in_flight.saturating_sub(1);
                }
                me.pump(leader);
            });
        }
    }

    async fn send_batch(&self, leader: NodeId, batch: Vec<Waiting>) {
        let now = Instant::now();
        let wait = batch
            .iter()
            .map(|w| w.deadline.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        let (commands, answers): (Vec<ByteBuf>, Vec<_>) =
            batch.into_iter().map(|w| (w.command, w.answer)).unzip();
        let count = commands.len();
        TELEMETRY.forwarded_batches.inc();
        TELEMETRY.forwarded_proposals.inc_by(count as u64);
        let outcome = (self.send)(leader, commands, wait).await;
        let each: Vec<Result<Applied, ConsensusError>> = match outcome {
            BatchOutcome::Answered(Ok(replies)) if replies.len() == count => {
                replies.into_iter().map(applied).collect()
            }
            BatchOutcome::Answered(Ok(replies)) => vec![
                Err(ConsensusError::Unknown(format!(
                    "{} answers from node {leader} for {count} proposals",
                    replies.len()
                )));
                count
            ],
            BatchOutcome::Answered(Err(e)) => vec![Err(e); count],
            BatchOutcome::Unanswered(why) => vec![Err(ConsensusError::Unknown(why)); count],
            BatchOutcome::NotSent(why) => vec![Err(ConsensusError::Refused(why)); count],
        };
        for (answer, result) in answers.into_iter().zip(each) {
            let _ = answer.send(result);
        }
    }
}

/// The oldest waiting proposals whose callers still wait, up to the batch bounds.
fn take_batch(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(next) = waiting.front() {
        if next.answer.is_closed() {
            // Its caller gave up before it left: it is never proposed.
            waiting.pop_front();
            continue;
        }
        let len = next.command.len();
        if batch.len() >= MAX_BATCH_PROPOSALS || !batch.is_empty() && bytes + len > MAX_BATCH_BYTES
        {
            break;
        }
        bytes += len;
        batch.extend(waiting.pop_front());
    }
    batch
}

fn applied(reply: ForwardReply) -> Result<Applied, ConsensusError> {
    match reply {
        Ok(Forwarded::Applied(applied)) => Ok(applied),
        Ok(other) => Err(ConsensusError::Unknown(format!(
            "an answer to another request: {other:?}"
        ))),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::Semaphore;

    use super::*;
    use crate::registry::Outcome;

    fn applied_at(index: u64) -> ForwardReply {
        Ok(Forwarded::Applied(Applied {
            index,
            term: 1,
            outcome: Outcome::NodeSet,
        }))
    }

    /// A leader that answers each command with its first byte as the index, once `gate` lets it;
    /// records every batch it got.
    fn leader(gate: Arc<Semaphore>, batches: Arc<Mutex<Vec<Vec<u8>>>>) -> SendBatch {
        Arc::new(move |_leader, commands, _wait| {
            let gate = gate.clone();
            let batches = batches.clone();
            Box::pin(async move {
                batches
                    .lock()
                    .unwrap()
                    .push(commands.iter().map(|c| c[0]).collect());
                let Ok(permit) = gate.acquire().await else {
                    return BatchOutcome::Unanswered("closed".into());
                };
                permit.forget();
                BatchOutcome::Answered(Ok(commands
                    .iter()
                    .map(|c| applied_at(u64::from(c[0])))
                    .collect()))
            })
        })
    }

    /// The point of it: 100 proposals queued while the first batches are out leave in a few
    /// batches, not 100 messages, and each caller gets its own command's answer.
    #[tokio::test]
    async fn proposals_queued_behind_a_batch_leave_together_and_each_gets_its_answer() {
        let gate = Arc::new(Semaphore::new(0));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = ProposalBatcher::new(leader(gate.clone(), batches.clone()));
        let calls: Vec<_> = (0..100u8)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { b.propose(3, vec![n], Duration::from_secs(10)).await })
            })
            .collect();
        // Two batches leave at once (the bound), the rest wait for an answer.
        while batches.lock().unwrap().len() < BATCHES_IN_FLIGHT {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert_eq!(batches.lock().unwrap().len(), BATCHES_IN_FLIGHT);
        gate.add_permits(1000);
        for (n, call) in calls.into_iter().enumerate() {
            let applied = call.await.unwrap().expect("applied");
            assert_eq!(applied.index, n as u64, "each caller gets its own answer");
        }
        let batches = batches.lock().unwrap();
        let sent: usize = batches.iter().map(Vec::len).sum();
        assert_eq!(sent, 100, "every proposal sent once: {batches:?}");
        assert!(
            batches.len() <= 4,
            "100 proposals in {} batches",
            batches.len()
        );
    }

    #[tokio::test]
    async fn a_batch_never_sent_is_refused_and_an_unanswered_one_is_unknown() {
        for (outcome, want_refused) in [
            (BatchOutcome::NotSent("not connected".into()), true),
            (BatchOutcome::Unanswered("no answer".into()), false),
        ] {
            let outcome = Arc::new(Mutex::new(Some(outcome)));
            let send: SendBatch = Arc::new(move |_, _, _| {
                let o = outcome.lock().unwrap().take();
                Box::pin(async move { o.unwrap_or(BatchOutcome::NotSent("twice".into())) })
            });
            let batcher = ProposalBatcher::new(send);
            let r = batcher.propose(2, vec![1], Duration::from_secs(5)).await;
            if want_refused {
                // Safe to ask again: nothing was proposed.
                assert!(matches!(r, Err(ConsensusError::Refused(_))), "{r:?}");
            } else {
                // Never asked again by the client: it may commit.
                assert!(matches!(r, Err(ConsensusError::Unknown(_))), "{r:?}");
            }
        }
    }

    /// A leader that answers the wrong number of answers (a bug or a forgery that passed the
    /// seal) does not get an answer attributed to the wrong caller.
    #[tokio::test]
    async fn answers_that_do_not_match_the_batch_are_attributed_to_nobody() {
        let send: SendBatch = Arc::new(|_, _, _| {
            Box::pin(async { BatchOutcome::Answered(Ok(vec![applied_at(1), applied_at(2)])) })
        });
        let batcher = ProposalBatcher::new(send);
        let r = batcher.propose(2, vec![1], Duration::from_secs(5)).await;
        assert!(matches!(r, Err(ConsensusError::Unknown(_))), "{r:?}");
    }

    /// A caller that stops waiting before its proposal left: it is never sent.
    #[tokio::test]
    async fn a_proposal_whose_caller_gave_up_before_it_left_is_never_sent() {
        let gate = Arc::new(Semaphore::new(0));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let batcher = ProposalBatcher::new(leader(gate.clone(), batches.clone()));
        // Fill both batch slots.
        let busy: Vec<_> = (0..BATCHES_IN_FLIGHT as u8)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { b.propose(3, vec![n], Duration::from_secs(10)).await })
            })
            .collect();
        while batches.lock().unwrap().len() < BATCHES_IN_FLIGHT {
            tokio::task::yield_now().await;
        }
        let gave_up = batcher
            .propose(3, vec![77], Duration::from_millis(20))
            .await;
        assert!(matches!(gave_up, Err(ConsensusError::Unknown(_))));
        gate.add_permits(100);
        for call in busy {
            call.await.unwrap().expect("applied");
        }
        let after = batcher.propose(3, vec![9], Duration::from_secs(5)).await;
        assert_eq!(after.expect("applied").index, 9);
        let sent: Vec<u8> = batches.lock().unwrap().iter().flatten().copied().collect();
        assert!(
            !sent.contains(&77),
            "a proposal nobody waits for was sent: {sent:?}"
        );
    }

    /// A waiting proposal of `len` bytes, and the receiver its caller would wait on.
    fn waiting(len: usize) -> (Waiting, oneshot::Receiver<Result<Applied, ConsensusError>>) {
        let (tx, rx) = oneshot::channel();
        let w = Waiting {
            command: ByteBuf::from(vec![0; len]),
            deadline: Instant::now(),
            answer: tx,
        };
        (w, rx)
    }

    /// A command over the byte bound goes alone; the bound on proposals per batch holds.
    #[test]
    fn batches_keep_their_bounds() {
        let mut queue = VecDeque::new();
        let mut receivers = Vec::new();
        let mut push = |queue: &mut VecDeque<Waiting>, len| {
            let (w, rx) = waiting(len);
            queue.push_back(w);
            receivers.push(rx);
        };
        for len in [10, MAX_BATCH_BYTES, 10] {
            push(&mut queue, len);
        }
        assert_eq!(take_batch(&mut queue).len(), 1);
        assert_eq!(take_batch(&mut queue).len(), 1, "the large one alone");
        assert_eq!(take_batch(&mut queue).len(), 1);
        for _ in 0..MAX_BATCH_PROPOSALS + 5 {
            push(&mut queue, 1);
        }
        assert_eq!(take_batch(&mut queue).len(), MAX_BATCH_PROPOSALS);
        assert_eq!(take_batch(&mut queue).len(), 5);
    }
}

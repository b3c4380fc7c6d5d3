//! `verisim node --force-new-cluster`: disaster recovery from one survivor of a cluster that lost
//! its majority (etcd's `--force-new-cluster`). Before the consensus member starts, the node
//! rewrites its durable Raft state so that it is the only voter, keeping every entry it holds:
//!
//! - a configuration entry `{voters: [me]}` is appended after the last entry of its log, in a
//!   term above every term it has seen;
//! - the hard state records that term, a vote for itself, and a commit index at that entry;
//! - both in one fsynced batch; a recovery horizon (a corrupt own snapshot) is dropped.
//!
//! The membership is the latest configuration in the log (Raft's rule), so the node starts as a
//! one-voter cluster, elects itself, and every entry in its log is committed and applied.
//!
//! **Why this is a last resort, and when it is safe.** It breaks Raft's guarantees on purpose:
//! - entries the survivor holds but that never committed (their clients got a timeout or
//!   `not_committed`, an ambiguous outcome) are committed now; entries committed by the lost
//!   majority that never reached the survivor are lost for good. Prefer the survivor with the
//!   highest last index (`GET /admin/status`, or the log) when several are left;
//! - the old members must never run again with their old data directories: they would still
//!   form a majority of the old configuration among themselves and elect a second leader (split
//!   brain). Wipe them and join them as new nodes, with new ids;
//! - it is idempotent: a node that is already the only voter is left as it is. Remove the flag
//!   once the node runs, so that a later restart, after others have joined, does not shrink the
//!   cluster back to one node.

use std::path::Path;

use tracing::error;
use verisim_raft::{ConfChange, Entry, HardState, Index, Membership, NodeId, Payload, Term};

use super::log_store::{LogStore, LogStoreError};

/// What forcing a new cluster changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced {
    /// The membership the node had.
    pub old: Membership,
    /// The configuration entry written, and its term.
    pub index: Index,
    pub term: Term,
    /// The commit index the node had recorded before (entries after it, up to `index - 1`, are
    /// committed by the rewrite).
    pub old_commit: Index,
}

/// Why the rewrite could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error(
        "--force-new-cluster: the data directory {0} holds no Raft state: there is nothing to \
         recover (start the node without the flag to bootstrap, or restore a backup)"
    )]
    Empty(String),
}

/// Rewrites the Raft state in `raft_dir` so that `me` is the only voter (see the module docs).
/// `Ok(None)`: it already was.
///
/// # Errors
/// The log cannot be read or written; it holds nothing.
pub fn force_new_cluster(raft_dir: &Path, me: NodeId) -> Result<Option<Forced>, ForceError> {
    let (mut log, persisted) = LogStore::open(&raft_dir.join("log"))?;
    if persisted.entries.is_empty()
        && persisted.snapshot.index == 0
        && persisted.snapshot.membership == Membership::default()
    {
        return Err(ForceError::Empty(raft_dir.display().to_string()));
    }
    let current = persisted
        .entries
        .iter()
        .rev()
        .find_map(|e| match &e.payload {
            Payload::Config { membership, .. } => Some(membership.clone()),
            _ => None,
        })
        .unwrap_or_else(|| persisted.snapshot.membership.clone());
    let alone = Membership::with_voters([me]);
    if current == alone {
        return Ok(None);
    }
    let (last, last_term) = persisted
        .entries
        .last()
        .map_or((persisted.snapshot.index, persisted.snapshot.term), |e| {
            (e.index, e.term)
        });
    let term = persisted.hard_state.term.max(last_term) + 1;
    let change = match current.members().find(|&m| m != me) {
        Some(other) => ConfChange::Remove(other),
        None => ConfChange::Promote(me),
    };
    let entry = Entry {
        term,
        index: last + 1,
        payload: Payload::Config {
            change,
            membership: alone,
        },
    };
    let hard_state = HardState {
        term,
        vote: Some(me),
        commit: last + 1,
    };
    log.append(&[entry], Some(&hard_state), true)?;
    if log.recovery_horizon()?.is_some() {
        log.clear_recovery_horizon()?;
    }
    let forced = Forced {
        old: current,
        index: last + 1,
        term,
        old_commit: persisted.hard_state.commit,
    };
    error!(
        old_voters = ?forced.old.voters,
        old_learners = ?forced.old.learners,
        index = forced.index,
        term = forced.term,
        old_commit = forced.old_commit,
        "FORCED A NEW CLUSTER: this node is now the only voter; every entry it holds is committed \
         (entries after its old commit index included), whatever the lost members held beyond it \
         is gone. Never start the old members with their old data directories; join new nodes \
         with new ids, and remove --force-new-cluster before the next restart"
    );
    Ok(Some(forced))
}

#[cfg(test)]
mod tests {
    use verisim_raft::{PersistedState, SnapshotMeta};

    use super::*;

    fn entry(index: Index, term: Term, payload: Payload) -> Entry {
        Entry {
            term,
            index,
            payload,
        }
    }

    #[test]
    fn a_survivor_becomes_the_only_voter_keeping_its_whole_log() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let (mut log, _) = LogStore::open(&dir.join("log")).unwrap();
            let boot = PersistedState::bootstrap([1, 2, 3]);
            log.record_snapshot(&boot.snapshot).unwrap();
            let entries: Vec<Entry> = (1..=5)
                .map(|i| entry(i, 2, Payload::Normal(vec![i as u8])))
                .collect();
            let hs = HardState {
                term: 4,
                vote: Some(2),
                commit: 3,
            };
            log.append(&entries, Some(&hs), true).unwrap();
        }
        let forced = force_new_cluster(dir, 2).unwrap().expect("rewritten");
        assert_eq!(forced.old, Membership::with_voters([1, 2, 3]));
        assert_eq!((forced.index, forced.term, forced.old_commit), (6, 5, 3));

        let (_, back) = LogStore::open(&dir.join("log")).unwrap();
        assert_eq!(back.entries.len(), 6, "every entry kept");
        assert_eq!(
            back.hard_state,
            HardState {
                term: 5,
                vote: Some(2),
                commit: 6
            }
        );
        let last = back.entries.last().unwrap();
        assert!(matches!(
            &last.payload,
            Payload::Config { membership, .. } if *membership == Membership::with_voters([2])
        ));
        // The core starts as the only voter, with everything committed.
        let raft = verisim_raft::Raft::new(verisim_raft::Config::new(2, 1), back).unwrap();
        assert_eq!(raft.membership(), &Membership::with_voters([2]));

        // Idempotent.
        assert_eq!(force_new_cluster(dir, 2).unwrap(), None);
    }

    #[test]
    fn after_a_snapshot_with_an_empty_log_the_entry_follows_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let (mut log, _) = LogStore::open(&dir.join("log")).unwrap();
            let snap = SnapshotMeta {
                index: 10,
                term: 3,
                membership: Membership::with_voters([1, 2, 3]),
                id: 7,
                size: 100,
            };
            log.install_snapshot(&snap).unwrap();
            log.append(
                &[],
                Some(&HardState {
                    term: 3,
                    vote: None,
                    commit: 10,
                }),
                true,
            )
            .unwrap();
        }
        let forced = force_new_cluster(dir, 3).unwrap().expect("rewritten");
        assert_eq!((forced.index, forced.term), (11, 4));
        let (_, back) = LogStore::open(&dir.join("log")).unwrap();
        assert_eq!(back.entries.first().map(|e| e.index), Some(11));
        assert_eq!(back.hard_state.commit, 11);
    }

    #[test]
    fn an_empty_data_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            force_new_cluster(tmp.path(), 1),
            Err(ForceError::Empty(_))
        ));
    }
}

//! What a consensus member starts from: the snapshot its log starts after, checked, and what it
//! does when that snapshot is corrupt (docs/consensus.md, "A corrupt snapshot of one's own").
//!
//! - An I/O error reading it is not corruption: the file stays, the start fails with the cause and
//!   is retried by the supervisor.
//! - A corrupt one is quarantined and named in an error line, and the node recovers by itself:
//!   from an older good snapshot when the log still holds every entry after it (nothing is lost);
//!   otherwise from that older snapshot (or an empty state) with the log dropped, waiting for the
//!   leader's InstallSnapshot. In that second case the node persists the last index it had and
//!   neither votes nor campaigns until it holds the log up to there again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::{error, info, warn};
use verisim_raft::{Index, Membership, NodeId, PersistedState, SnapshotId, SnapshotMeta};

use super::log_store::{LogStore, LogStoreError};
use super::replica::Replica;
use crate::registry::{RegistryState, decode_exact};
use crate::snapshot::{
    Expected, OpenReport, SnapshotDir, SnapshotError, SnapshotHeader, read_registry,
};

/// Why a consensus member could not start from its disk.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "cannot read {path}, the snapshot this node's log starts after: {cause}; the file was left \
         in place and the start is retried (fix the disk or its permissions if this persists)"
    )]
    Unreadable { path: PathBuf, cause: String },
    /// Corrupt, and no other voter exists to send this node a snapshot.
    #[error("{0}")]
    Unrecoverable(String),
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// The node's own latest snapshot was corrupt (or missing), and how it recovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptOwnSnapshot {
    pub path: PathBuf,
    /// Where it was moved (`None`: the file was missing).
    pub moved_to: Option<PathBuf>,
    pub cause: String,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// An older snapshot plus the log still on disk rebuild everything: nothing was lost.
    FromOlderSnapshot { index: Index },
    /// The state restarts at `base` (an older snapshot, or 0: empty) with no log; the leader's
    /// InstallSnapshot brings it up to date. No vote until the log reaches `horizon` again.
    FromLeader { base: Index, horizon: Index },
}

impl std::fmt::Display for CorruptOwnSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the snapshot this node's log starts after, {}, is unusable: {}",
            self.path.display(),
            self.cause
        )?;
        match &self.moved_to {
            Some(to) => write!(f, "; it was moved to {}", to.display())?,
            None => write!(f, "; the file is missing")?,
        }
        match self.recovery {
            Recovery::FromOlderSnapshot { index } => write!(
                f,
                "; recovered from the older snapshot at {index} and the log after it"
            ),
            Recovery::FromLeader { base, horizon } => write!(
                f,
                "; restarting from index {base} without a log: the leader's snapshot brings this \
                 node up to date, and it does not vote until it holds the log up to {horizon} again"
            ),
        }
    }
}

/// Everything the consensus actor starts from.
pub struct Restored {
    pub persisted: PersistedState,
    pub replica: Replica,
    pub snapshot_paths: BTreeMap<SnapshotId, PathBuf>,
    /// While set, the node neither votes nor campaigns until its applied index reaches it.
    pub horizon: Option<Index>,
    /// What was wrong with the node's own snapshot, if anything.
    pub corrupt: Option<CorruptOwnSnapshot>,
}

/// A snapshot file, checked and decoded.
struct Loaded {
    header: SnapshotHeader,
    state: RegistryState,
    membership: Membership,
    size: u64,
}

impl Loaded {
    fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            index: self.header.last_included_index,
            term: self.header.last_included_term,
            membership: self.membership.clone(),
            id: Expected::id_of(&self.header.body_blake3),
            size: self.size,
        }
    }

    fn replica(self) -> Replica {
        Replica {
            state: self.state,
            applied_index: self.header.last_included_index,
            applied_term: self.header.last_included_term,
            membership: self.membership,
        }
    }
}

/// Reads, checks and decodes a snapshot. A body or membership that passes its checksums but does
/// not decode is a format failure: corruption, as far as this build can tell.
fn load(path: &std::path::Path) -> Result<Loaded, SnapshotError> {
    let (header, state) = read_registry(path)?;
    let membership: Membership =
        decode_exact(&header.membership).map_err(|e| SnapshotError::Corrupt {
            path: path.to_owned(),
            reason: format!("the membership does not decode: {e}"),
        })?;
    let size = std::fs::metadata(path)
        .map_err(|source| SnapshotError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    Ok(Loaded {
        header,
        state,
        membership,
        size,
    })
}

/// Builds the replica and the core's starting state from disk (see the module docs).
pub fn restore(
    me: NodeId,
    log: &mut LogStore,
    mut persisted: PersistedState,
    snapshots: &SnapshotDir,
    report: &OpenReport,
    bootstrap_voters: &[NodeId],
) -> Result<Restored, RestoreError> {
    let mut replica = Replica::default();
    let mut snapshot_paths = BTreeMap::new();
    let horizon = log.recovery_horizon()?;
    if persisted.snapshot.index == 0 {
        if persisted.hard_state == Default::default()
            && persisted.entries.is_empty()
            && !bootstrap_voters.is_empty()
        {
            persisted = PersistedState::bootstrap(bootstrap_voters.iter().copied());
            log.record_snapshot(&persisted.snapshot)?;
        }
        // Before the first snapshot the bootstrap membership lives only in the recorded snapshot
        // metadata (index 0), never in a log entry, so re-applying the log would leave the replica
        // without it.
        replica.membership = persisted.snapshot.membership.clone();
        return Ok(Restored {
            persisted,
            replica,
            snapshot_paths,
            horizon,
            corrupt: None,
        });
    }

    let meta = persisted.snapshot.clone();
    let path = snapshots.path_for(meta.index, meta.term);
    let set_aside = match report.quarantined.iter().find(|q| q.from == path) {
        Some(q) => (Some(q.to.clone()), q.cause.clone()),
        None => match load(&path) {
            Ok(loaded) => {
                snapshot_paths.insert(meta.id, path);
                let mut replica = loaded.replica();
                replica.membership = meta.membership.clone();
                return Ok(Restored {
                    persisted,
                    replica,
                    snapshot_paths,
                    horizon,
                    corrupt: None,
                });
            }
            Err(e) if e.is_corruption() => {
                let q = snapshots.quarantine(&path, &e)?;
                (Some(q.to), q.cause)
            }
            Err(SnapshotError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Gone: set aside by an earlier start that stopped before recovering, or removed.
                let to = path.with_extension("corrupt");
                if to.exists() {
                    (
                        Some(to),
                        "set aside as corrupt by an earlier start".to_owned(),
                    )
                } else {
                    (None, "the file does not exist".to_owned())
                }
            }
            Err(e) => {
                return Err(RestoreError::Unreadable {
                    path,
                    cause: e.to_string(),
                });
            }
        },
    };
    let (moved_to, cause) = set_aside;

    // The newest older snapshot that loads.
    let mut base: Option<(Loaded, PathBuf)> = None;
    for info in snapshots.list()?.into_iter().rev() {
        if info.header.last_included_index >= meta.index {
            continue;
        }
        match load(&info.path) {
            Ok(loaded) => {
                base = Some((loaded, info.path));
                break;
            }
            Err(e) if e.is_corruption() => {
                snapshots.quarantine(&info.path, &e)?;
            }
            Err(e) => warn!(error = %e, "an older snapshot cannot be read; not used"),
        }
    }

    let first = persisted.entries.first().map(|e| e.index);
    let covered = base.as_ref().is_some_and(|(b, _)| {
        let (index, term) = (b.header.last_included_index, b.header.last_included_term);
        match first {
            Some(f) if index + 1 >= f => {
                // Where the log holds the snapshot's last entry, it must be the same one.
                index < f || persisted.entries[(index - f) as usize].term == term
            }
            _ => false,
        }
    });
    let (recovery, replica, new_horizon) = match base {
        Some((loaded, base_path)) if covered => {
            let base_meta = loaded.meta();
            log.record_snapshot(&base_meta)?;
            snapshot_paths.insert(base_meta.id, base_path);
            let index = base_meta.index;
            persisted.snapshot = base_meta;
            (
                Recovery::FromOlderSnapshot { index },
                loaded.replica(),
                horizon,
            )
        }
        base => {
            if meta.membership.voters.iter().all(|&v| v == me) {
                // Nobody else holds the state: starting would serve a registry that lost data.
                return Err(RestoreError::Unrecoverable(format!(
                    "the snapshot this node's log starts after, {}, is unusable: {cause}; {}; \
                     this node is the cluster's only voter, so no other node can send it the \
                     state: restore the data directory from a backup",
                    path.display(),
                    moved_to
                        .as_ref()
                        .map_or("the file is missing".to_owned(), |to| format!(
                            "it was moved to {}",
                            to.display()
                        ))
                )));
            }
            let last = persisted.entries.last().map_or(meta.index, |e| e.index);
            let horizon = last.max(meta.index).max(horizon.unwrap_or(0));
            let (base_meta, replica) = match base {
                Some((loaded, base_path)) => {
                    let m = loaded.meta();
                    snapshot_paths.insert(m.id, base_path);
                    (m, loaded.replica())
                }
                None => {
                    let m = SnapshotMeta {
                        index: 0,
                        term: 0,
                        membership: meta.membership.clone(),
                        id: 0,
                        size: 0,
                    };
                    let replica = Replica {
                        membership: meta.membership.clone(),
                        ..Replica::default()
                    };
                    (m, replica)
                }
            };
            log.reset_for_recovery(&base_meta, horizon)?;
            let base = base_meta.index;
            persisted.snapshot = base_meta;
            persisted.entries.clear();
            (
                Recovery::FromLeader { base, horizon },
                replica,
                Some(horizon),
            )
        }
    };
    let corrupt = CorruptOwnSnapshot {
        path,
        moved_to,
        cause,
        recovery,
    };
    error!("{corrupt}");
    info!(recovery = ?corrupt.recovery, "recovering from a corrupt snapshot without an operator");
    Ok(Restored {
        persisted,
        replica,
        snapshot_paths,
        horizon: new_horizon,
        corrupt: Some(corrupt),
    })
}

#[cfg(test)]
mod tests {
    use verisim_raft::{Entry, HardState, Payload};

    use super::*;
    use crate::registry::encode;

    struct Disk {
        _tmp: tempfile::TempDir,
        log: LogStore,
        snapshots: SnapshotDir,
        members: Membership,
    }

    /// A node of a 3-voter cluster with entries 1..=last (term 1) and snapshots at `snaps`.
    fn disk(last: Index, snaps: &[Index], keep_from: Index) -> Disk {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = LogStore::open(&tmp.path().join("log")).unwrap();
        let (snapshots, _) = SnapshotDir::open(tmp.path().join("snapshots"), 5).unwrap();
        let members = Membership::with_voters([1, 2, 3]);
        let entries: Vec<Entry> = (1..=last)
            .map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Noop,
            })
            .collect();
        let hs = HardState {
            term: 2,
            vote: Some(1),
            commit: last,
        };
        log.append(&entries, Some(&hs), true).unwrap();
        for &i in snaps {
            let state = RegistryState::default();
            let info = snapshots
                .write(i, 1, encode(&members), 0, |w| state.write_snapshot_body(w))
                .unwrap();
            let size = std::fs::metadata(&info.path).unwrap().len();
            log.record_snapshot(&SnapshotMeta {
                index: i,
                term: 1,
                membership: members.clone(),
                id: Expected::id_of(&info.header.body_blake3),
                size,
            })
            .unwrap();
        }
        log.compact(keep_from).unwrap();
        Disk {
            _tmp: tmp,
            log,
            snapshots,
            members,
        }
    }

    fn flip(path: &std::path::Path) {
        let mut b = std::fs::read(path).unwrap();
        b[9] ^= 1;
        std::fs::write(path, b).unwrap();
    }

    fn reopen(d: &mut Disk) -> (PersistedState, OpenReport) {
        let persisted = d.log.read_back().unwrap();
        let (_, report) = SnapshotDir::open(d.snapshots.path(), 5).unwrap();
        (persisted, report)
    }

    #[test]
    fn an_older_snapshot_the_log_still_covers_loses_nothing() {
        // Snapshots at 10 and 20; the log still holds 6..=30.
        let mut d = disk(30, &[10, 20], 5);
        let newest = d.snapshots.path_for(20, 1);
        flip(&newest);
        let (persisted, report) = reopen(&mut d);
        let r = restore(1, &mut d.log, persisted, &d.snapshots, &report, &[]).unwrap();
        let c = r.corrupt.expect("reported");
        assert_eq!(c.recovery, Recovery::FromOlderSnapshot { index: 10 });
        assert_eq!(c.path, newest);
        assert_eq!(c.moved_to, Some(newest.with_extension("corrupt")));
        assert!(c.cause.contains("checksum"), "{c}");
        assert_eq!(r.horizon, None, "nothing lost: it votes at once");
        assert_eq!(r.persisted.snapshot.index, 10);
        assert_eq!(r.persisted.entries.first().map(|e| e.index), Some(6));
        assert_eq!(r.persisted.hard_state.term, 2);
        assert_eq!(r.replica.applied_index, 10);
        assert_eq!(r.replica.membership, d.members);
        assert_eq!(d.log.read_back().unwrap().snapshot.index, 10, "recorded");
    }

    #[test]
    fn without_a_covering_snapshot_the_log_is_dropped_and_a_horizon_kept() {
        // Snapshots at 10 and 20; the log holds only 19..=30.
        let mut d = disk(30, &[10, 20], 18);
        flip(&d.snapshots.path_for(20, 1));
        let (persisted, report) = reopen(&mut d);
        let r = restore(1, &mut d.log, persisted, &d.snapshots, &report, &[]).unwrap();
        assert_eq!(
            r.corrupt.expect("reported").recovery,
            Recovery::FromLeader {
                base: 10,
                horizon: 30
            }
        );
        assert_eq!(r.horizon, Some(30));
        assert!(r.persisted.entries.is_empty());
        assert_eq!(r.persisted.hard_state.vote, Some(1), "term and vote kept");
        assert_eq!(d.log.recovery_horizon().unwrap(), Some(30), "persisted");
    }

    #[test]
    fn an_io_error_on_the_own_snapshot_leaves_it_in_place_and_fails_the_start() {
        let mut d = disk(30, &[20], 18);
        let path = d.snapshots.path_for(20, 1);
        // Replace the file by a link to itself: opening it fails with ELOOP, an I/O error that
        // says nothing about the bytes.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let (persisted, report) = reopen(&mut d);
        assert!(report.quarantined.is_empty());
        assert_eq!(report.unreadable.len(), 1);
        let e = match restore(1, &mut d.log, persisted, &d.snapshots, &report, &[]) {
            Err(e) => e,
            Ok(_) => panic!("started from a snapshot it could not read"),
        };
        assert!(
            matches!(&e, RestoreError::Unreadable { path: p, .. } if *p == path),
            "{e}"
        );
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert_eq!(d.log.recovery_horizon().unwrap(), None, "nothing reset");
        assert!(std::fs::symlink_metadata(&path).is_ok(), "left in place");
        assert!(!path.with_extension("corrupt").exists());
    }
}

//! `verisim restore`: a fresh data directory for a brand-new single-node cluster whose registry is
//! the backup's and whose stores hold its payloads (etcd's `etcdutl snapshot restore`).
//!
//! 1. The whole file is verified first (frames, every item against its content hash and the
//!    registry's record, the trailer's counts and BLAKE3): a bad file writes nothing.
//! 2. The data directory must not exist or be empty.
//! 3. The registry becomes the new node's snapshot at the backup's index and term, with a new
//!    membership (this node, alone, a voter: the old membership is discarded), every entity placed
//!    on this node and the old nodes' addresses dropped; the Raft log starts after it, with the
//!    hard state's commit index there. Nothing of the old cluster's log comes along.
//! 4. The payloads are read again (and checked again) into the stores, each with its registry
//!    fence, and the stores are fsynced.
//!
//! Any failure after the directory was created removes what was written.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use verisim_raft::{HardState, Membership, NodeId, SnapshotMeta};
use verisim_stores::db::PERSIST_MODE;
use verisim_stores::{
    Durability, ExportedItem, GraphStore, Modality, ModalityKind, SemanticStore, TensorStore,
    VectorStore,
};

use super::format::{
    BackupError, BackupReader, BackupSummary, Expect, decode_registry, verify_file,
};
use crate::consensus::LogStore;
use crate::consensus::endpoint::node_name;
use crate::registry::{NodeName, encode};
use crate::snapshot::{Expected, SnapshotDir};
use crate::store_actors::fence::Fences;
use crate::store_actors::{Engine, Fence, StoreSetup, StoresSettings, open_stores_db};

/// Where and as which node a backup is restored (what `verisim node` would be started with).
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub raft_dir: PathBuf,
    pub stores_dir: PathBuf,
    /// The node's `[stores]` section: the vector collections and the schema the payloads need.
    pub stores: StoresSettings,
    pub snapshots_kept: usize,
}

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub summary: BackupSummary,
    pub verify_ms: u64,
    pub write_ms: u64,
}

/// Restores `file` into `target` (see the module docs).
///
/// # Errors
/// [`BackupError::Target`] for a data directory that is not empty; any error of the file; I/O
/// and store errors while writing (after which nothing is left behind).
pub fn restore(file: &Path, target: &RestoreTarget) -> Result<RestoreReport, BackupError> {
    if target.id == 0 {
        return Err(BackupError::Target("node id 0 is reserved".into()));
    }
    let started = Instant::now();
    let summary = verify_file(file)?;
    let verify_ms = started.elapsed().as_millis() as u64;
    let setup = target
        .stores
        .resolve()
        .map_err(|e| BackupError::Target(e.to_string()))?;
    let created = prepare_dir(&target.data_dir)?;
    let started = Instant::now();
    match write_all(file, target, &setup) {
        Ok(()) => Ok(RestoreReport {
            summary,
            verify_ms,
            write_ms: started.elapsed().as_millis() as u64,
        }),
        Err(e) => {
            // Best effort: a half-written data directory must not be started.
            if created {
                let _ = fs::remove_dir_all(&target.data_dir);
            } else if let Ok(entries) = fs::read_dir(&target.data_dir) {
                for entry in entries.flatten() {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
            Err(e)
        }
    }
}

/// Creates the data directory, or checks the existing one is empty; true if it was created.
fn prepare_dir(dir: &Path) -> Result<bool, BackupError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Target(format!(
                    "{} is not empty: restore only into a new data directory (a restore makes a \
                     new cluster; it never merges into a node's existing data)",
                    dir.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)
                .map_err(BackupError::io(format!("creating {}", dir.display())))?;
            Ok(true)
        }
        Err(e) => Err(BackupError::io(format!("reading {}", dir.display()))(e)),
    }
}

fn store_err(e: impl std::fmt::Display) -> BackupError {
    BackupError::Io {
        context: "writing the stores".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// The four engines and their fences on the new stores database.
struct Stores {
    graph: GraphStore,
    vector: VectorStore,
    tensor: TensorStore,
    semantic: SemanticStore,
    fences: Vec<(ModalityKind, Fences)>,
}

impl Stores {
    fn open(db: &fjall::Database, setup: &StoreSetup) -> Result<Self, BackupError> {
        fn engine<E: Engine>(db: &fjall::Database, setup: &StoreSetup) -> Result<E, BackupError> {
            let mut e = E::open(db, setup).map_err(store_err)?;
            e.set_durability(Durability::Deferred);
            Ok(e)
        }
        let fences = crate::store_actors::MODALITIES
            .into_iter()
            .map(|k| -> Result<(ModalityKind, Fences), BackupError> {
                Ok((
                    k,
                    Fences::open(db, k, Durability::Deferred).map_err(store_err)?,
                ))
            })
            .collect::<Result<Vec<_>, BackupError>>()?;
        Ok(Stores {
            graph: engine(db, setup)?,
            vector: engine(db, setup)?,
            tensor: engine(db, setup)?,
            semantic: engine(db, setup)?,
            fences,
        })
    }

    fn import(&mut self, item: &ExportedItem, fence: Fence) -> Result<(), BackupError> {
        if let Some((_, f)) = self.fences.iter().find(|(k, _)| *k == item.modality) {
            f.record(&item.id, fence, false).map_err(store_err)?;
        }
        let imported = match item.modality {
            ModalityKind::Graph => self.graph.import_item(item),
            ModalityKind::Vector => self.vector.import_item(item),
            ModalityKind::Tensor => self.tensor.import_item(item),
            ModalityKind::Semantic => self.semantic.import_item(item),
        };
        imported.map_err(|e| {
            BackupError::Target(format!(
                "the {:?} item of {} cannot be stored here: {e} (start the restore with the \
                 source cluster's [stores] configuration: collections and schema)",
                item.modality, item.id
            ))
        })?;
        Ok(())
    }
}

fn write_all(file: &Path, target: &RestoreTarget, setup: &StoreSetup) -> Result<(), BackupError> {
    let f = fs::File::open(file).map_err(BackupError::io(format!("opening {}", file.display())))?;
    let mut reader = BackupReader::open(BufReader::with_capacity(1 << 20, f))?;
    let header = reader.header().clone();
    let mut state = decode_registry(&reader.registry()?)?;
    let original = state.clone();

    // The stores first: their payloads are read again, checked again, and imported.
    let db = open_stores_db(&target.stores_dir, &target.stores).map_err(store_err)?;
    {
        let mut stores = Stores::open(&db, setup)?;
        let mut expect = Expect::new(&original);
        while let Some(item) = reader.next_item()? {
            expect.check(&original, &item)?;
            let meta = original
                .entity(&item.id)
                .ok_or_else(|| BackupError::Corrupt(format!("no entity {}", item.id)))?;
            stores.import(
                &item,
                Fence {
                    index: meta.index,
                    version: meta.version,
                },
            )?;
        }
        expect.finish()?;
    }
    db.persist(PERSIST_MODE).map_err(store_err)?;
    drop(db);

    // Then the registry, as this node's snapshot, alone in a new membership.
    let me = NodeName::new(node_name(target.id)).map_err(|e| BackupError::Target(e.to_string()))?;
    state.rehome(&me);
    let membership = Membership::with_voters([target.id]);
    let snapshots_dir = target.raft_dir.join("snapshots");
    fs::create_dir_all(&snapshots_dir).map_err(BackupError::io(format!(
        "creating {}",
        snapshots_dir.display()
    )))?;
    let (snapshots, _) = SnapshotDir::open(&snapshots_dir, target.snapshots_kept.max(1))
        .map_err(|e| BackupError::Target(e.to_string()))?;
    let info = snapshots
        .write(
            header.index,
            header.term,
            encode(&membership),
            crate::consensus::actor::wall_clock_ms(),
            |w| state.write_snapshot_body(w),
        )
        .map_err(|e| BackupError::Target(format!("writing the snapshot: {e}")))?;
    let size = fs::metadata(&info.path)
        .map_err(BackupError::io(format!("reading {}", info.path.display())))?
        .len();
    let meta = SnapshotMeta {
        index: header.index,
        term: header.term,
        membership,
        id: Expected::id_of(&info.header.body_blake3),
        size,
    };
    let (mut log, _) = LogStore::open(&target.raft_dir.join("log"))
        .map_err(|e| BackupError::Target(format!("opening the Raft log: {e}")))?;
    let log_err = |e: crate::consensus::LogStoreError| {
        BackupError::Target(format!("writing the Raft log: {e}"))
    };
    log.install_snapshot(&meta).map_err(log_err)?;
    log.append(
        &[],
        Some(&HardState {
            term: header.term,
            vote: None,
            commit: header.index,
        }),
        true,
    )
    .map_err(log_err)?;
    drop(log);
    for dir in [
        target.data_dir.as_path(),
        match target.data_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        },
    ] {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(BackupError::io(format!("fsyncing {}", dir.display())))?;
    }
    Ok(())
}

//! Producing a backup on a node, as a stream of bytes (what `GET /admin/backup` answers).
//!
//! Consistency: the registry is fixed once, at a read barrier (every write acknowledged before the
//! request is in it), by cloning the applied replica (O(1): persistent maps). Every payload it
//! names is then fetched from the entity's replicas (this node first) and must match the content
//! hash that registry records, so the file is the registry at one index plus exactly the payloads
//! it names. The stores keep only each entity's newest content: an entity rewritten or deleted
//! between the barrier and the moment its payload is fetched cannot be backed up at that index,
//! and the backup is aborted (an ABORT frame naming it: the CLI refuses the file and says to
//! retry). A payload still on its way to its replicas (a write committed a moment ago) is waited
//! for up to [`DISTRIBUTION_GRACE`].

use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::future::join_all;
use tokio::sync::mpsc;
use tracing::{info, warn};
use verisim_raft::NodeId;
use verisim_stores::{EntityId, ExportedItem};

use super::format::{BackupHeader, BackupWriter, FORMAT};
use crate::consensus::SharedReplica;
use crate::consensus::endpoint::node_name;
use crate::proxy::registration::fetch_verified;
use crate::registry::{EntityMeta, RegistryState, encode};
use crate::store_actors::StoreDirectory;

/// How long a payload no replica holds at the recorded hash is looked for again.
pub const DISTRIBUTION_GRACE: Duration = Duration::from_secs(5);
/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 256 * 1024;

/// The registry a backup is taken of.
#[derive(Clone)]
pub struct Fixed {
    pub state: RegistryState,
    pub index: u64,
    pub term: u64,
    pub membership: Vec<u8>,
}

/// Clones the applied registry (call it after a read barrier).
pub fn fix(replica: &SharedReplica) -> Fixed {
    let r = replica.read();
    Fixed {
        state: r.state.clone(),
        index: r.applied_index,
        term: r.applied_term,
        membership: encode(&r.membership),
    }
}

/// The verified payload of each of `meta`'s items, or why one cannot be had.
async fn items_of(
    stores: &StoreDirectory,
    me: &str,
    id: &EntityId,
    meta: &EntityMeta,
) -> Result<Vec<ExportedItem>, String> {
    let mut order: Vec<&str> = meta.placement.iter().map(|n| n.as_str()).collect();
    order.sort_by_key(|n| *n != me);
    let deadline = Instant::now() + DISTRIBUTION_GRACE;
    let mut pause = Duration::from_millis(10);
    loop {
        let fetched = join_all(
            meta.items
                .iter()
                .map(|(&kind, item)| fetch_verified(stores, &order, id, kind, item.hash)),
        )
        .await;
        let mut found = Vec::with_capacity(fetched.len());
        let mut unfound = Vec::new();
        for (r, kind) in fetched.into_iter().zip(meta.items.keys()) {
            match r {
                Ok((_, item)) => found.push(item),
                Err(seen) => unfound.push(format!("{kind:?}: {seen:?}")),
            }
        }
        if unfound.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no replica of {id} (version {}, placement {:?}) holds the content the registry \
                 records at the backup's index: {}; an update or delete after that index replaced \
                 it (the stores keep only the newest content), or the replicas are down: retry \
                 the backup",
                meta.version,
                order,
                unfound.join("; ")
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Streams the backup of `fixed`: chunks of the file, ending with the trailer, or with an ABORT
/// frame saying why it could not be completed. Stops when the receiver goes away.
pub fn stream(
    me: NodeId,
    stores: StoreDirectory,
    fixed: Fixed,
) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let started = Instant::now();
        let registry = fixed.state.to_cbor();
        let header = BackupHeader {
            format: FORMAT,
            source_node: me,
            index: fixed.index,
            term: fixed.term,
            membership: fixed.membership,
            created_ms: crate::consensus::actor::wall_clock_ms(),
            entities: fixed.state.entity_count() as u64,
            registry_len: 0,
            registry_blake3: Vec::new(),
        };
        let send = |buf: &mut Vec<u8>| {
            let chunk = Bytes::from(std::mem::take(buf));
            let tx = tx.clone();
            async move { tx.send(Ok(chunk)).await.is_ok() }
        };
        let mut w = match BackupWriter::new(Vec::with_capacity(CHUNK * 2), header, &registry) {
            Ok(w) => w,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        // Writes into a Vec cannot fail.
        let _ = w.registry(&registry);
        drop(registry);
        let me_name = node_name(me);
        let mut items = 0u64;
        for (id, meta) in fixed.state.entities() {
            match items_of(&stores, &me_name, id, meta).await {
                Ok(found) => {
                    for item in &found {
                        let _ = w.item(item);
                        items += 1;
                    }
                }
                Err(reason) => {
                    warn!(entity = %id, %reason, "backup aborted");
                    if let Ok(mut rest) = w.abort(&reason) {
                        let _ = send(&mut rest).await;
                    }
                    return;
                }
            }
            if w.get_mut().len() >= CHUNK && !send(w.get_mut()).await {
                info!("backup stream closed by the client");
                return;
            }
        }
        match w.finish() {
            Ok((mut rest, hash)) => {
                if send(&mut rest).await {
                    info!(
                        index = fixed.index,
                        entities = fixed.state.entity_count(),
                        items,
                        blake3 = %hex::encode(hash),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "backup streamed"
                    );
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    rx
}

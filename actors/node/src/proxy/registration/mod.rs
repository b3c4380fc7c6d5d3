//! The registration service: registering, updating, deleting and reading entities, apart from HTTP.
//!
//! A write is prepared on this node's stores (validated and hashed, nothing written), staged here,
//! committed to the registry with its hashes and placement, then imported into the stores of the
//! entity's replica nodes; it is done once a majority of them hold the payload durably. A retry
//! (same request id and content) gets the committed outcome and distributes the payload again if
//! that version is still current, so a write whose distribution was cut short completes.
//!
//! A read ([`Registration::get`], `read.rs`) fixes a committed version and verifies each modality
//! against its hash on the replicas, falling back to staged copies.
//!
//! The service talks to the registry and the stores only through [`RegistryPort`] and
//! [`StorePort`] (`proxy::ports`); the handlers in `proxy::entities` and `proxy::entity_read`
//! parse, call and map.

mod adapters;
mod read;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verisim_client::wire::ErrorCode;
use verisim_stores::{EntityId, ExportedItem, ItemInput, ModalityKind};

pub(crate) use self::read::fetch_verified;
pub use self::read::{EntityRead, Held, Seen, Unfound, Views};
use super::error::{ApiError, store_error};
pub use crate::proxy::ports::{RegistryPort, StorePort};
use crate::registry::placement::{place, write_quorum};
use crate::registry::{ClientId, Command, ItemMeta, NodeName, Origin, Outcome, Refusal};
use crate::store_actors::{Fence, MODALITIES, StoreCallError};

/// How long a replica's failed import is retried in the background before it is left to the
/// drift checker (and the staged copy on this node).
const DISTRIBUTION_RETRY_FOR: Duration = Duration::from_secs(30);

/// A write of all four modalities of one entity.
pub struct Write {
    pub origin: Origin,
    /// The outcome already committed for this request id and content: a retry.
    pub retry_of: Option<Outcome>,
    pub id: EntityId,
    pub inputs: [ItemInput; 4],
    /// `Some(0)`: a registration (the entity must not exist); `Some(v)`: an update of version `v`.
    pub expected_version: Option<u64>,
}

/// What a write committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub version: u64,
    pub index: u64,
    /// The hash and size of each modality, as committed.
    pub items: BTreeMap<ModalityKind, ItemMeta>,
}

/// A delete of one entity.
pub struct Delete {
    pub origin: Origin,
    pub retry_of: Option<Outcome>,
    pub id: EntityId,
    pub expected_version: Option<u64>,
}

/// What a delete committed: the entity's last version, and the index of the delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub version: u64,
    pub index: u64,
}

/// The registration service over a registry and stores.
#[derive(Clone)]
pub struct Registration<R, S> {
    pub registry: R,
    pub stores: S,
    /// Replicas a new entity is placed on (`[placement] replicas`).
    pub replicas: usize,
}

impl<R: RegistryPort, S: StorePort> Registration<R, S> {
    pub fn new(registry: R, stores: S, replicas: usize) -> Self {
        Self {
            registry,
            stores,
            replicas,
        }
    }

    /// Registers or updates an entity: prepare, stage, commit, distribute.
    pub async fn write(&self, w: Write) -> Result<Written, ApiError> {
        let started = Instant::now();
        let Write {
            origin,
            retry_of,
            id,
            inputs,
            expected_version,
        } = w;
        // Before any store work; a retry was authorised when it first committed.
        if retry_of.is_none() && expected_version != Some(0) {
            self.check_write(&id, &origin.client).await?;
        }
        let [g, v, t, s] = inputs;
        // Four store calls on four different actors: concurrently.
        let (g, v, t, s) = tokio::try_join!(
            self.prepare(g),
            self.prepare(v),
            self.prepare(t),
            self.prepare(s)
        )?;
        // Shared, not copied, by the replicas' imports below.
        let items: Arc<[ExportedItem]> = Arc::new([g, v, t, s]);
        // Durable on this node before any hash of it can commit: see `proxy::staging`.
        self.stores.stage_local(&items).await?;
        let metas: BTreeMap<ModalityKind, ItemMeta> = items
            .iter()
            .map(|i| {
                (
                    i.modality,
                    ItemMeta {
                        hash: i.hash,
                        size: i.payload.0.len() as u64,
                    },
                )
            })
            .collect();
        let prepared = started.elapsed();

        let outcome = match retry_of {
            Some(prev) => prev,
            None => {
                // Updates keep the committed placement; a new entity is placed over the voters.
                let placement = match self.registry.entity(&id) {
                    Some(e) => e.placement,
                    None => place(&id, &self.registry.voters(), self.replicas),
                };
                // An error here leaves the staged copy: the command may still commit.
                self.registry
                    .commit(Command::PutEntity {
                        origin,
                        id: id.clone(),
                        items: metas.clone(),
                        placement,
                        expected_version,
                    })
                    .await?
                    .outcome
            }
        };
        let (version, index) = written(&id, outcome).inspect_err(|_| {
            // Refused: nothing of it committed.
            self.stores.unstage_local_later(&items);
        })?;
        let committed = started.elapsed();
        // Distribute only what is still the current version, and only the payload it committed: a
        // newer write has distributed its own.
        let answer = match self.registry.entity(&id) {
            Some(_) if self.registry.skip_this_distribution() => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    "fault injection: the write committed and was not distributed",
                ));
            }
            Some(meta) if meta.version == version && meta.items == metas => {
                // On failure the staged copy stays: reads and the sweep repair from it.
                self.distribute(&meta.placement, items.clone(), Fence { index, version })
                    .await?;
                self.stores.unstage_local_later(&items);
                meta.items.to_map()
            }
            _ => {
                self.stores.unstage_local_later(&items);
                metas
            }
        };
        tracing::debug!(
            %id,
            prepare_us = prepared.as_micros() as u64,
            commit_us = (committed - prepared).as_micros() as u64,
            distribute_us = (started.elapsed() - committed).as_micros() as u64,
            "entity written"
        );
        Ok(Written {
            version,
            index,
            items: answer,
        })
    }

    /// Deletes an entity: the registry forgets it, then its replicas drop their items (what they
    /// miss, the drift checker removes as orphans).
    pub async fn delete(&self, d: Delete) -> Result<Deleted, ApiError> {
        let Delete {
            origin,
            retry_of,
            id,
            expected_version,
        } = d;
        if retry_of.is_none() {
            self.check_write(&id, &origin.client).await?;
        }
        let placement = self.registry.entity(&id).map(|e| e.placement);
        let outcome = match retry_of {
            Some(prev) => prev,
            None => {
                self.registry
                    .commit(Command::DeleteEntity {
                        origin,
                        id: id.clone(),
                        expected_version,
                    })
                    .await?
                    .outcome
            }
        };
        let (version, index) = match outcome {
            Outcome::EntityDeleted { version, index } => (version, index),
            Outcome::Refused(r) => return Err(refused(&id, r)),
            other => {
                return Err(ApiError::internal(format!("unexpected outcome {other:?}")));
            }
        };
        if self.registry.entity(&id).is_none() {
            for node in placement.unwrap_or_default() {
                for kind in MODALITIES {
                    // Fenced by the delete's index: a re-registration that committed after it and
                    // already reached this replica is not removed.
                    if let Err(e) = self.stores.remove(node.as_str(), kind, &id, index).await {
                        tracing::warn!(%node, ?kind, error = %e, "removing a deleted entity's item failed; the drift checker will");
                    }
                }
            }
        }
        Ok(Deleted { version, index })
    }

    /// The early ownership check of an update or delete, on this node's replica: what apply
    /// would refuse is refused before any store work. Apply has the final word (a grant or
    /// revocation may commit in between). A refusal is looked at again after a read barrier, since
    /// this replica may not have applied a grant the caller was just given.
    pub async fn check_write(&self, id: &EntityId, client: &ClientId) -> Result<(), ApiError> {
        let refusal = || {
            self.registry
                .entity(id)
                .filter(|e| !e.can_write(client))
                .map(|e| Refusal::Forbidden {
                    visible: e.can_read(client),
                })
        };
        if refusal().is_none() {
            return Ok(());
        }
        self.registry.read_barrier().await?;
        match refusal() {
            None => Ok(()),
            Some(r) => Err(refused(id, r)),
        }
    }

    async fn prepare(&self, input: ItemInput) -> Result<ExportedItem, ApiError> {
        self.stores.prepare(input).await.map_err(store_error)
    }

    /// Imports the items into the stores of every replica node; returns once a majority of the
    /// replicas hold all of them durably. The remaining replicas finish in the background; one
    /// whose import failed (its store actor restarting, a connection down) is tried again with
    /// backoff for [`DISTRIBUTION_RETRY_FOR`] while the registry still commits exactly these
    /// items, then left to the drift checker.
    async fn distribute(
        &self,
        placement: &[NodeName],
        items: Arc<[ExportedItem]>,
        fence: Fence,
    ) -> Result<(), ApiError> {
        let needed = write_quorum(placement.len());
        let (tx, mut rx) = tokio::sync::mpsc::channel(placement.len().max(1));
        for node in placement {
            let node = node.as_str().to_owned();
            let (registry, stores) = (self.registry.clone(), self.stores.clone());
            let items = items.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut result = import_all(&stores, &node, &items, fence).await;
                let first = result.as_ref().map(|_| ()).map_err(ToString::to_string);
                let _ = tx.send((node.clone(), first)).await;
                // The caller is answered from the first attempts: it must not wait for the
                // background retries below.
                drop(tx);
                let deadline = Instant::now() + DISTRIBUTION_RETRY_FOR;
                let mut pause = Duration::from_millis(100);
                while result.is_err()
                    && Instant::now() + pause < deadline
                    && still_current(&registry, &items)
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    result = import_all(&stores, &node, &items, fence).await;
                    if result.is_ok() {
                        tracing::info!(%node, id = %items[0].id, "distribution to a replica completed on a retry");
                    }
                }
                if let Err(e) = result {
                    tracing::warn!(%node, error = %e, "distribution to a replica failed; left to the drift checker");
                }
            });
        }
        drop(tx);
        let mut done = 0;
        let mut failures = Vec::new();
        while let Some((node, result)) = rx.recv().await {
            match result {
                Ok(()) => {
                    done += 1;
                    if done >= needed {
                        return Ok(());
                    }
                }
                Err(e) => {
                    tracing::debug!(%node, error = %e, "distribution to a replica failed; retrying in the background");
                    failures.push(e);
                }
            }
        }
        // A refusal that is the caller's fault would have been caught by prepare; any failure
        // here is the cluster's. The metadata is committed: a retry with the same request id
        // completes it.
        Err(ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "the payload reached {done} of {} replicas ({needed} needed); retry with the same \
                 request id: {}",
                placement.len(),
                failures.join("; ")
            ),
        ))
    }
}

/// Imports `items` into `node`'s stores (batched with the other writes to that node, answered
/// after its group fsync). A store that holds a newer version already has what it should: that
/// counts as done.
async fn import_all<S: StorePort>(
    stores: &S,
    node: &str,
    items: &Arc<[ExportedItem]>,
    fence: Fence,
) -> Result<(), StoreCallError> {
    stores.import_entity(node, items.clone(), fence).await
}

/// Whether the registry (as this node applied it) still commits exactly `items` for their entity:
/// a newer write distributes its own, and a deleted entity's items must not come back.
fn still_current<R: RegistryPort>(registry: &R, items: &[ExportedItem]) -> bool {
    let Some(first) = items.first() else {
        return false;
    };
    registry.entity(&first.id).is_some_and(|e| {
        items
            .iter()
            .all(|i| e.items.get(&i.modality).map(|m| m.hash) == Some(i.hash))
    })
}

fn written(id: &EntityId, outcome: Outcome) -> Result<(u64, u64), ApiError> {
    match outcome {
        Outcome::EntityPut { version, index } => Ok((version, index)),
        // No version in the message: the caller may not be allowed to read the entity.
        Outcome::Refused(Refusal::VersionConflict { expected: 0, .. }) => Err(ApiError::new(
            ErrorCode::VersionConflict,
            "the entity already exists",
        )),
        // An update of an entity that does not exist: answered as for a hidden one.
        Outcome::Refused(Refusal::VersionConflict { actual: 0, .. }) => Err(no_entity(id)),
        Outcome::Refused(r) => Err(refused(id, r)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}

/// 404 for an entity that does not exist or that the caller may not read: the same answer, so
/// that a client cannot tell the two apart (docs/api.md, Ownership and grants).
pub fn no_entity(id: &EntityId) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no entity {id}"))
}

/// A refusal of a change to entity `id` as an API error: a hidden entity is answered as absent.
pub fn refused(id: &EntityId, r: Refusal) -> ApiError {
    match r {
        Refusal::UnknownEntity | Refusal::Forbidden { visible: false } => no_entity(id),
        Refusal::Forbidden { visible: true } => ApiError::new(
            ErrorCode::Forbidden,
            format!("only the owner of {id} or a client it granted write may change it"),
        ),
        other => other.into(),
    }
}

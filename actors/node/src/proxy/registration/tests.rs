//! The registration service against a fake registry (a real `RegistryState` applying what is
//! committed, no Raft) and fake stores (maps, with nodes that can be cut off).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verisim_client::wire::ErrorCode;
use verisim_stores::codec::Bytes;
use verisim_stores::{ContentHash, EntityId, ExportedItem, ItemInput, ModalityKind};

use super::*;
use crate::consensus::Applied;
use crate::registry::{
    ClientId, Command, EntityMeta, NodeName, Origin, Outcome, Proposal, PublicKey, RegistryConfig,
    RegistryState, RequestId, WindowId,
};
use crate::store_actors::{Fence, FenceRecord, Imported, StoreCallError};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A registry that applies each commit at the next index, with clients `alice` and `bob` enrolled
/// and a window each.
#[derive(Clone)]
struct FakeRegistry {
    state: Arc<Mutex<(RegistryState, u64)>>,
    voters: Vec<NodeName>,
    commits: Arc<AtomicUsize>,
    no_quorum: Arc<AtomicBool>,
}

impl FakeRegistry {
    fn new(voters: &[&str]) -> Self {
        let mut state = RegistryState::new(RegistryConfig {
            max_clock_step_ms: u64::MAX,
            ..RegistryConfig::default()
        });
        let mut index = 0;
        for name in ["alice", "bob"] {
            for command in [
                Command::RegisterClient {
                    client: client(name),
                    public_key: PublicKey([name.len() as u8; 32]),
                },
                Command::OpenWindow {
                    client: client(name),
                    window: window(name),
                    expires_at_ms: 10_000_000,
                    client_dh: PublicKey([9; 32]),
                },
            ] {
                index += 1;
                state.apply(
                    index,
                    &Proposal {
                        at_ms: 1_000,
                        command,
                    },
                );
            }
        }
        Self {
            state: Arc::new(Mutex::new((state, index))),
            voters: voters
                .iter()
                .map(|n| NodeName::new(*n).expect("a node name"))
                .collect(),
            commits: Arc::default(),
            no_quorum: Arc::default(),
        }
    }

    /// What the registry remembers of a request: the outcome a retry is answered with.
    fn remembered(&self, o: &Origin) -> Option<Outcome> {
        lock(&self.state)
            .0
            .applied_request(&o.client, &o.request)
            .map(|a| a.outcome.clone())
    }
}

impl RegistryPort for FakeRegistry {
    fn entity(&self, id: &EntityId) -> Option<EntityMeta> {
        lock(&self.state).0.entity(id).cloned()
    }

    fn voters(&self) -> Vec<NodeName> {
        self.voters.clone()
    }

    fn members(&self) -> Vec<String> {
        self.voters.iter().map(|n| n.as_str().to_owned()).collect()
    }

    fn local_node(&self) -> String {
        LOCAL.to_owned()
    }

    async fn commit(&self, command: Command) -> Result<Applied, ApiError> {
        if self.no_quorum.load(Ordering::SeqCst) {
            return Err(ApiError::new(ErrorCode::NoQuorum, "no quorum (fake)"));
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.state);
        let (state, index) = &mut *guard;
        *index += 1;
        let outcome = state.apply(
            *index,
            &Proposal {
                at_ms: 2_000,
                command,
            },
        );
        Ok(Applied {
            index: *index,
            term: 1,
            outcome,
        })
    }

    async fn read_barrier(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The node the service runs on (every test cluster has it).
const LOCAL: &str = "n1";

/// What every node's stores hold: (node, modality, entity) → (hash, fence).
type Held = BTreeMap<(String, ModalityKind, EntityId), (ContentHash, Fence)>;
/// The items themselves, by the same key as [`Held`].
type Items = BTreeMap<(String, ModalityKind, EntityId), ExportedItem>;
/// This node's staged items: (modality, entity, hash) → item.
type Staged = BTreeMap<(ModalityKind, EntityId, ContentHash), ExportedItem>;

/// Stores of every node as maps; this node ([`LOCAL`]) prepares and stages; nodes in `down` are
/// unreachable.
#[derive(Clone, Default)]
struct FakeStores {
    held: Arc<Mutex<Held>>,
    /// The items themselves, by the same key as `held`: what an export answers.
    items: Arc<Mutex<Items>>,
    staged: Arc<Mutex<Staged>>,
    down: Arc<Mutex<BTreeSet<String>>>,
    prepares: Arc<AtomicUsize>,
}

impl FakeStores {
    fn new() -> Self {
        Self::default()
    }

    fn holders(&self, id: &str) -> BTreeSet<String> {
        let id = entity(id);
        lock(&self.held)
            .keys()
            .filter(|(_, _, i)| *i == id)
            .map(|(n, _, _)| n.clone())
            .collect()
    }

    /// Nodes that hold all four items of `id`.
    fn complete_on(&self, id: &str) -> usize {
        let id = entity(id);
        let held = lock(&self.held);
        self.nodes_seen(&held)
            .into_iter()
            .filter(|n| {
                MODALITIES
                    .iter()
                    .all(|k| held.contains_key(&(n.clone(), *k, id.clone())))
            })
            .count()
    }

    fn nodes_seen(&self, held: &Held) -> BTreeSet<String> {
        held.keys().map(|(n, _, _)| n.clone()).collect()
    }

    fn unreachable(&self, node: &str, kind: ModalityKind) -> Option<StoreCallError> {
        lock(&self.down)
            .contains(node)
            .then(|| StoreCallError::Unreachable {
                node: node.to_owned(),
                kind,
            })
    }
}

impl StorePort for FakeStores {
    async fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreCallError> {
        self.prepares.fetch_add(1, Ordering::SeqCst);
        let payload = format!("{input:?}").into_bytes();
        Ok(ExportedItem {
            modality: input.modality(),
            id: input.id().clone(),
            hash: ContentHash::of(input.modality().hash_domain(), &payload),
            payload: Bytes(payload),
        })
    }

    async fn stage_local(&self, items: &[ExportedItem]) -> Result<(), ApiError> {
        let mut staged = lock(&self.staged);
        for i in items {
            staged.insert((i.modality, i.id.clone(), i.hash), i.clone());
        }
        Ok(())
    }

    fn unstage_local_later(&self, items: &[ExportedItem]) {
        let mut staged = lock(&self.staged);
        for i in items {
            staged.remove(&(i.modality, i.id.clone(), i.hash));
        }
    }

    async fn import(
        &self,
        node: &str,
        item: &ExportedItem,
        fence: Fence,
    ) -> Result<Imported, StoreCallError> {
        if let Some(e) = self.unreachable(node, item.modality) {
            return Err(e);
        }
        let mut held = lock(&self.held);
        let key = (node.to_owned(), item.modality, item.id.clone());
        // Fenced as the real stores are: never overwritten by something older.
        match held.get(&key) {
            Some((_, f)) if f.index > fence.index => Ok(Imported::Superseded {
                held: FenceRecord {
                    fence: *f,
                    tombstone: false,
                    at_ms: 0,
                },
            }),
            _ => {
                held.insert(key.clone(), (item.hash, fence));
                lock(&self.items).insert(key, item.clone());
                Ok(Imported::Stored(item.hash))
            }
        }
    }

    async fn remove(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        index: u64,
    ) -> Result<(), StoreCallError> {
        if let Some(e) = self.unreachable(node, kind) {
            return Err(e);
        }
        let mut held = lock(&self.held);
        let key = (node.to_owned(), kind, id.clone());
        if held.get(&key).is_some_and(|(_, f)| f.index < index) {
            held.remove(&key);
            lock(&self.items).remove(&key);
        }
        Ok(())
    }

    async fn export(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        if let Some(e) = self.unreachable(node, kind) {
            return Err(e);
        }
        Ok(lock(&self.items)
            .get(&(node.to_owned(), kind, id.clone()))
            .cloned())
    }

    async fn item_hash(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> Result<Option<ContentHash>, StoreCallError> {
        if let Some(e) = self.unreachable(node, kind) {
            return Err(e);
        }
        Ok(lock(&self.held)
            .get(&(node.to_owned(), kind, id.clone()))
            .map(|(h, _)| *h))
    }

    async fn staged(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        hash: ContentHash,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        if let Some(e) = self.unreachable(node, kind) {
            return Err(e);
        }
        if node != LOCAL {
            return Ok(None);
        }
        Ok(lock(&self.staged).get(&(kind, id.clone(), hash)).cloned())
    }
}

fn client(s: &str) -> ClientId {
    ClientId::new(s).expect("a client id")
}

fn window(s: &str) -> WindowId {
    WindowId::new(s).expect("a window id")
}

fn entity(s: &str) -> EntityId {
    EntityId::new(s).expect("an entity id")
}

fn origin(who: &str, request: &str) -> Origin {
    Origin {
        client: client(who),
        window: window(who),
        request: RequestId::new(request).expect("a request id"),
        fingerprint: ContentHash(*blake3::hash(request.as_bytes()).as_bytes()),
    }
}

/// The four inputs of the `verisim dev` example entity `id`, with `tag` in its vector so that two
/// tags give two different payloads.
fn inputs(id: &str, tag: f32) -> [ItemInput; 4] {
    let mut request = verisim_client::wire::example_entity(id).expect("the example entity");
    if let Some(v) = request.vector.values.first_mut() {
        *v = tag;
    }
    let (wire_id, update) = request.into_update();
    let id = wire_id;
    crate::proxy::entities::inputs(&id, &update).expect("valid inputs")
}

fn write(who: &str, request: &str, id: &str, tag: f32, expected: Option<u64>) -> Write {
    Write {
        origin: origin(who, request),
        retry_of: None,
        id: entity(id),
        inputs: inputs(id, tag),
        expected_version: expected,
    }
}

fn service(registry: &FakeRegistry, stores: &FakeStores) -> Registration<FakeRegistry, FakeStores> {
    Registration::new(registry.clone(), stores.clone(), 3)
}

/// Waits for `cond` with a deadline (background distribution and unstaging).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_registration_commits_its_hashes_and_placement_and_reaches_every_replica() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3", "n4"]);
    let stores = FakeStores::new();
    let written = service(&registry, &stores)
        .write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    assert_eq!(written.version, 1);
    let meta = registry.entity(&entity("e1")).expect("committed");
    assert_eq!(meta.owner, client("alice"));
    assert_eq!(
        meta.items, written.items,
        "the answer is what was committed"
    );
    assert_eq!(
        meta.placement.len(),
        3,
        "[placement] replicas of the 4 voters"
    );
    assert_eq!(
        meta.placement,
        crate::registry::placement::place(&entity("e1"), &registry.voters(), 3)
    );
    // Answered once a majority holds it; the third replica completes in the background.
    eventually("every replica holds all four items", || {
        stores.complete_on("e1") == 3
    })
    .await;
    let placed: BTreeSet<String> = meta
        .placement
        .iter()
        .map(|n| n.as_str().to_owned())
        .collect();
    assert_eq!(stores.holders("e1"), placed, "only the placed nodes");
    for ((_, kind, _), (hash, fence)) in lock(&stores.held).iter() {
        assert_eq!(Some(*hash), meta.items.get(kind).map(|m| m.hash));
        assert_eq!(
            *fence,
            Fence {
                index: written.index,
                version: 1
            }
        );
    }
    assert!(
        lock(&stores.staged).is_empty(),
        "the staged copy is dropped"
    );
}

#[tokio::test]
async fn a_refused_write_commits_nothing_distributes_nothing_and_drops_its_staged_copy() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    svc.write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    eventually("distributed", || stores.complete_on("e1") == 3).await;
    let before = lock(&stores.held).clone();

    // A second registration of the same id: the registry's apply refuses it.
    let err = svc
        .write(write("bob", "r2", "e1", 2.0, Some(0)))
        .await
        .expect_err("the entity exists");
    assert_eq!(err.code, ErrorCode::VersionConflict);
    assert_eq!(*lock(&stores.held), before, "no store changed");
    assert!(
        lock(&stores.staged).is_empty(),
        "the refused write's staged copy is dropped"
    );
    assert_eq!(registry.entity(&entity("e1")).map(|e| e.version), Some(1));
}

#[tokio::test]
async fn a_stranger_is_refused_before_any_store_work_and_sees_no_entity() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    svc.write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    let (prepares, commits) = (
        stores.prepares.load(Ordering::SeqCst),
        registry.commits.load(Ordering::SeqCst),
    );
    let err = svc
        .write(write("bob", "r2", "e1", 2.0, Some(1)))
        .await
        .expect_err("bob may not write alice's entity");
    // Bob may not read it either: told what he would be told of an entity that does not exist.
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(
        stores.prepares.load(Ordering::SeqCst),
        prepares,
        "no store work"
    );
    assert_eq!(
        registry.commits.load(Ordering::SeqCst),
        commits,
        "nothing proposed"
    );
    let err = svc
        .delete(Delete {
            origin: origin("bob", "r3"),
            retry_of: None,
            id: entity("e1"),
            expected_version: None,
        })
        .await
        .expect_err("nor delete it");
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(registry.entity(&entity("e1")).is_some());
}

#[tokio::test]
async fn a_write_short_of_a_quorum_of_replicas_is_unavailable_and_its_retry_completes_it() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    lock(&stores.down).extend(["n2".to_owned(), "n3".to_owned()]);
    let w = write("alice", "r1", "e1", 1.0, Some(0));
    let first = w.origin.clone();
    // Answered from the first attempts, not after the background retries (30 s).
    let err = tokio::time::timeout(Duration::from_secs(10), svc.write(w))
        .await
        .expect("answered without waiting for the background retries")
        .expect_err("one replica of three");
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(
        err.message.contains("retry with the same request id"),
        "{}",
        err.message
    );
    // Committed all the same: the staged copy stays, for reads and repair.
    assert_eq!(registry.entity(&entity("e1")).map(|e| e.version), Some(1));
    assert_eq!(lock(&stores.staged).len(), 4);

    // The replicas come back; the client retries the same request: answered with the committed
    // outcome (no second commit), the payload distributed again.
    lock(&stores.down).clear();
    let commits = registry.commits.load(Ordering::SeqCst);
    let mut retry = write("alice", "r1", "e1", 1.0, Some(0));
    retry.retry_of = registry.remembered(&first);
    assert!(
        retry.retry_of.is_some(),
        "the registry remembers the request"
    );
    let written = svc.write(retry).await.expect("the retry completes");
    assert_eq!(written.version, 1);
    assert_eq!(
        registry.commits.load(Ordering::SeqCst),
        commits,
        "not committed twice"
    );
    eventually("every replica holds it", || stores.complete_on("e1") == 3).await;
}

#[tokio::test]
async fn without_a_quorum_nothing_commits_and_the_staged_copy_stays() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    registry.no_quorum.store(true, Ordering::SeqCst);
    let err = service(&registry, &stores)
        .write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect_err("no quorum");
    assert_eq!(err.code, ErrorCode::NoQuorum);
    assert!(registry.entity(&entity("e1")).is_none());
    assert!(lock(&stores.held).is_empty(), "nothing distributed");
    // The outcome is unknown to the service (the command may still commit): keep the copy.
    assert_eq!(lock(&stores.staged).len(), 4);
}

#[tokio::test]
async fn an_update_keeps_the_placement_and_replaces_every_replicas_items() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3", "n4", "n5"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    let first = svc
        .write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    let placement = registry.entity(&entity("e1")).expect("committed").placement;
    eventually("distributed", || stores.complete_on("e1") == 3).await;
    let second = svc
        .write(write("alice", "r2", "e1", 2.0, Some(1)))
        .await
        .expect("updated");
    assert_eq!(second.version, 2);
    assert_ne!(first.items, second.items, "a new payload");
    let meta = registry.entity(&entity("e1")).expect("committed");
    assert_eq!(
        meta.placement, placement,
        "updates keep the committed placement"
    );
    eventually("every replica holds version 2", || {
        lock(&stores.held)
            .values()
            .filter(|(_, f)| f.version == 2)
            .count()
            == 12
    })
    .await;
    let err = svc
        .write(write("alice", "r3", "e1", 3.0, Some(1)))
        .await
        .expect_err("a stale If-Match");
    assert_eq!(err.code, ErrorCode::VersionConflict);
}

#[tokio::test]
async fn a_delete_commits_and_removes_the_items_from_every_replica() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    svc.write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    eventually("distributed", || stores.complete_on("e1") == 3).await;
    let deleted = svc
        .delete(Delete {
            origin: origin("alice", "r2"),
            retry_of: None,
            id: entity("e1"),
            expected_version: Some(1),
        })
        .await
        .expect("deleted");
    assert_eq!(deleted.version, 1);
    assert!(registry.entity(&entity("e1")).is_none());
    assert!(
        stores.holders("e1").is_empty(),
        "every replica dropped its items"
    );
    let err = svc
        .delete(Delete {
            origin: origin("alice", "r3"),
            retry_of: None,
            id: entity("e1"),
            expected_version: None,
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code, ErrorCode::NotFound);
}

/// Entity `e1` of alice registered on `n1`..`n3`, every replica holding it, the staged copy gone.
async fn registered_e1() -> (
    FakeRegistry,
    FakeStores,
    Registration<FakeRegistry, FakeStores>,
) {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    svc.write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect("registered");
    eventually("distributed", || stores.complete_on("e1") == 3).await;
    eventually("unstaged", || lock(&stores.staged).is_empty()).await;
    (registry, stores, svc)
}

/// Replaces what `node` holds of `id`'s `kind` with another content (drift, or a lost update).
fn drift(stores: &FakeStores, node: &str, id: &str, kind: ModalityKind) {
    let key = (node.to_owned(), kind, entity(id));
    let mut items = lock(&stores.items);
    let item = items.get_mut(&key).expect("the replica holds the item");
    item.payload.0.push(0xFF);
    item.hash = ContentHash::of(kind.hash_domain(), &item.payload.0);
    let hash = item.hash;
    if let Some((h, _)) = lock(&stores.held).get_mut(&key) {
        *h = hash;
    }
}

#[tokio::test]
async fn a_read_answers_every_modality_verified_this_node_first_and_nothing_to_a_stranger() {
    let (registry, _stores, svc) = registered_e1().await;
    let committed = registry.entity(&entity("e1")).expect("committed");
    let read = svc
        .get(&entity("e1"), &client("alice"), false)
        .await
        .expect("read");
    assert_eq!(read.meta.version, 1);
    assert!(read.unfound.is_empty());
    assert_eq!(read.views.len(), 4);
    for (kind, (node, item)) in &read.views {
        assert_eq!(node, LOCAL, "this node's replica first");
        assert_eq!(
            item.hash,
            committed.items.get(kind).unwrap().hash,
            "the committed content"
        );
    }
    let err = svc
        .get(&entity("e1"), &client("bob"), false)
        .await
        .err()
        .expect("bob may not read alice's entity");
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_replica_with_other_content_is_passed_over_and_drift_is_named_only_when_none_holds_it() {
    let (_registry, stores, svc) = registered_e1().await;

    // This node's vector drifted: another replica serves it.
    drift(&stores, LOCAL, "e1", ModalityKind::Vector);
    let read = svc
        .get(&entity("e1"), &client("alice"), false)
        .await
        .expect("read from another replica");
    assert_ne!(read.views[&ModalityKind::Vector].0, LOCAL);
    assert_eq!(read.views[&ModalityKind::Graph].0, LOCAL);

    // Every replica's vector drifted (and no staged copy is left): drift, with what each held.
    drift(&stores, "n2", "e1", ModalityKind::Vector);
    drift(&stores, "n3", "e1", ModalityKind::Vector);
    let err = svc
        .get(&entity("e1"), &client("alice"), false)
        .await
        .err()
        .expect("no replica holds the committed vector");
    assert_eq!(err.code, ErrorCode::DriftDetected);
    let details = err.details.expect("details").to_string();
    for node in ["n1", "n2", "n3"] {
        assert!(details.contains(node), "{details}");
    }
    // The caller may ask for whatever is there: three modalities, and the vector listed unfound.
    let read = svc
        .get(&entity("e1"), &client("alice"), true)
        .await
        .expect("read with drift allowed");
    assert_eq!(read.views.len(), 3);
    assert_eq!(read.unfound.len(), 1);
    assert_eq!(read.unfound[0].0, ModalityKind::Vector);
    assert_eq!(read.unfound[0].2.len(), 3, "what each replica held");
}

#[tokio::test]
async fn unreachable_replicas_are_not_drift() {
    let (_registry, stores, svc) = registered_e1().await;
    drift(&stores, LOCAL, "e1", ModalityKind::Tensor);
    lock(&stores.down).extend(["n2".to_owned(), "n3".to_owned()]);
    let err = svc
        .get(&entity("e1"), &client("alice"), false)
        .await
        .err()
        .expect("the replicas that may hold it did not answer");
    assert_eq!(err.code, ErrorCode::Unavailable);
}

#[tokio::test]
async fn a_staged_copy_serves_a_read_no_replica_can_and_repairs_the_replicas() {
    let registry = FakeRegistry::new(&["n1", "n2", "n3"]);
    let stores = FakeStores::new();
    let svc = service(&registry, &stores);
    // Committed, but held only by this node's store (the others are cut off), and staged here.
    lock(&stores.down).extend(["n2".to_owned(), "n3".to_owned()]);
    let err = svc
        .write(write("alice", "r1", "e1", 1.0, Some(0)))
        .await
        .expect_err("short of a write quorum");
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert_eq!(lock(&stores.staged).len(), 4);
    // This node's store loses the items (a disk replaced): no reachable replica holds them.
    lock(&stores.held).retain(|(n, _, _), _| n != LOCAL);
    lock(&stores.items).retain(|(n, _, _), _| n != LOCAL);
    let meta = registry.entity(&entity("e1")).expect("committed");
    let read = svc
        .get(&entity("e1"), &client("alice"), false)
        .await
        .expect("served from the staged copy");
    assert_eq!(read.views.len(), 4);
    for (kind, (_, item)) in &read.views {
        assert_eq!(item.hash, meta.items.get(kind).unwrap().hash);
    }
    // And the read repaired this node's replica from it.
    eventually("this node's replica repaired", || {
        MODALITIES.iter().all(|k| {
            lock(&stores.held)
                .get(&(LOCAL.to_owned(), *k, entity("e1")))
                .map(|(h, _)| *h)
                == meta.items.get(k).map(|m| m.hash)
        })
    })
    .await;
}

//! The registry state machine ("tiny core"): metadata only, applied deterministically from the log.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use imbl::OrdMap;

use serde::{Deserialize, Serialize};

use verisim_vocab::{ContentHash, EntityId, Modality as ModalityKind};

use super::command::{
    Access, Command, ItemMeta, NodeInfo, Origin, PlacementMove, Proposal, PublicKey, decode_exact,
    encode,
};
use super::ids::{ClientId, NodeName, RequestId, WindowId};
use super::items::Items;

mod codec;

pub use codec::{FORMAT_CBOR, FORMAT_COMPACT, SnapshotBodyError};

/// The modalities every entity registers, all four of them.
pub const MODALITIES: [ModalityKind; 4] = ModalityKind::ALL;

/// Replicas an entity may be placed on.
pub const MAX_REPLICAS: usize = 16;

/// Settings that change what apply does. They live in the state (and so in snapshots) so that every
/// replica applies with the same values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryConfig {
    /// How long applied request ids are remembered, measured on the registry clock. A retry within
    /// this horizon returns the first outcome; the proxy refuses timestamps further than its skew
    /// allowance from cluster time, so this must be at least twice the skew plus what bad entries
    /// may push the clock ahead (default 12 min: 2 × 300 s skew + 2 × the 60 s step bound).
    pub request_retention_ms: u64,
    /// The longest trust window apply accepts.
    pub max_window_ms: u64,
    /// The most one entry may advance the registry clock (docs/consensus.md, "Cluster time").
    /// Snapshots from before the bound existed decode with the default.
    #[serde(default = "default_max_clock_step_ms")]
    pub max_clock_step_ms: u64,
}

/// The default bound on the registry clock's step per entry: 60 s.
pub const DEFAULT_MAX_CLOCK_STEP_MS: u64 = 60 * 1000;

fn default_max_clock_step_ms() -> u64 {
    DEFAULT_MAX_CLOCK_STEP_MS
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            request_retention_ms: 12 * 60 * 1000,
            max_window_ms: 24 * 60 * 60 * 1000,
            max_clock_step_ms: DEFAULT_MAX_CLOCK_STEP_MS,
        }
    }
}

/// The registry clock after an entry stamped `at_ms` is applied to one reading `clock_ms`: it
/// follows the stamp but never goes backwards and advances at most `max_step_ms`, so no proposer,
/// broken or malicious, moves it further than that per entry. A registry without a clock yet (0:
/// a new cluster's first entry) takes the stamp as it is.
pub fn step_clock(clock_ms: u64, at_ms: u64, max_step_ms: u64) -> u64 {
    if clock_ms == 0 {
        return at_ms;
    }
    at_ms.clamp(clock_ms, clock_ms.saturating_add(max_step_ms))
}

/// 1 to [`MAX_REPLICAS`] distinct nodes.
fn valid_placement(placement: &[NodeName]) -> bool {
    let mut sorted = placement.to_vec();
    sorted.sort();
    sorted.dedup();
    !sorted.is_empty() && sorted.len() == placement.len() && sorted.len() <= MAX_REPLICAS
}

/// A registered client identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub public_key: PublicKey,
    pub revoked: bool,
    pub registered_index: u64,
}

/// An open trust window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    pub client: ClientId,
    pub opened_at_ms: u64,
    pub expires_at_ms: u64,
    /// The client's ephemeral X25519 public key; the window's HMAC key is derived from it.
    pub client_dh: PublicKey,
}

/// What the registry knows of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityMeta {
    pub version: u64,
    pub items: Items,
    pub placement: Vec<NodeName>,
    /// The client that registered it; updates never change it.
    pub owner: ClientId,
    /// Log index of the entry that wrote this version, or that last moved its placement (the
    /// fence of every store item of it: `store_actors::fence`).
    pub index: u64,
    /// Other clients the owner let read or write it (absent in snapshots older than grants).
    #[serde(default)]
    pub grants: BTreeMap<ClientId, Access>,
}

impl EntityMeta {
    /// The owner and every grantee read.
    pub fn can_read(&self, client: &ClientId) -> bool {
        &self.owner == client || self.grants.contains_key(client)
    }

    /// The owner and `write` grantees update and delete.
    pub fn can_write(&self, client: &ClientId) -> bool {
        &self.owner == client || self.grants.get(client) == Some(&Access::Write)
    }

    /// Why `client` may not change this entity: `visible` says whether it may read it (the proxy
    /// answers 403 then, and 404 otherwise so that ids do not leak).
    fn refuse(&self, client: &ClientId) -> Refusal {
        Refusal::Forbidden {
            visible: self.can_read(client),
        }
    }
}

/// Why apply refused a command. Refusals are deterministic: every replica refuses the same entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("the log entry is not a registry command: {0}")]
    Malformed(String),
    #[error("unknown client")]
    UnknownClient,
    #[error("the client is revoked")]
    ClientRevoked,
    #[error("unknown trust window")]
    UnknownWindow,
    #[error("the trust window belongs to another client")]
    WindowOfAnotherClient,
    #[error("the trust window has expired")]
    WindowExpired,
    #[error("a window with this id already exists")]
    DuplicateWindow,
    #[error("the window would last {asked_ms} ms, more than the {max_ms} ms allowed")]
    WindowTooLong { asked_ms: u64, max_ms: u64 },
    #[error("version conflict: expected {expected}, found {actual}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("unknown entity")]
    UnknownEntity,
    #[error("placement must name 1 to {MAX_REPLICAS} distinct nodes")]
    BadPlacement,
    #[error("an entity needs all four modalities")]
    MissingModality,
    #[error("the request id was already used for a different request")]
    ReplayedRequest,
    // New variants go at the end: remembered outcomes in older snapshots name the ones above.
    /// The client may not change this entity (or its grants); `visible`: it may read it.
    #[error("this client may not change the entity")]
    Forbidden { visible: bool },
    #[error("a grant names a client that is not registered")]
    UnknownGrantee,
    #[error("the owner needs no grant on its own entity")]
    GrantToOwner,
    #[error("the client is registered with another key; rotate it explicitly")]
    ClientExists,
}

/// The result of applying one entry; proposers are answered with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    ClientRegistered,
    ClientRevoked,
    WindowOpened {
        expires_at_ms: u64,
    },
    WindowClosed,
    EntityPut {
        version: u64,
        index: u64,
    },
    EntityDeleted {
        version: u64,
        index: u64,
    },
    NodeSet,
    NodeRemoved,
    Refused(Refusal),
    // New variants go at the end (see `Refusal`).
    /// A grant was set or withdrawn; the entity's version is unchanged.
    GrantChanged {
        index: u64,
    },
    /// A client's key was replaced and this many of its open windows closed.
    ClientRotated {
        windows_closed: u64,
    },
    /// `moved` placements changed; `skipped` did not (the entity changed, went, or the target
    /// placement was invalid).
    PlacementsMoved {
        moved: u64,
        skipped: u64,
        index: u64,
    },
}

/// An applied client request, remembered so a retry gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRequest {
    pub at_ms: u64,
    /// The [`Origin::fingerprint`] of the request that was applied.
    pub fingerprint: ContentHash,
    pub outcome: Outcome,
}

/// The registry state. Ordered maps throughout, so its CBOR encoding (the snapshot body) and its digest are
/// the same on every replica. Persistent (`imbl::OrdMap`: shared, copy-on-write B-trees), so a
/// clone costs a few reference counts whatever the size: the snapshotter copies the replica under
/// its read lock in microseconds at a million entities, and the consensus actor's applies never wait
/// for a snapshot. They encode exactly as `BTreeMap`s do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryState {
    pub config: RegistryConfig,
    applied_index: u64,
    /// The registry clock: follows the proposals' stamps, never backwards, at most
    /// `config.max_clock_step_ms` per entry ([`step_clock`]). Expiry is measured against it.
    clock_ms: u64,
    entities: OrdMap<EntityId, EntityMeta>,
    clients: OrdMap<ClientId, ClientRecord>,
    windows: OrdMap<WindowId, WindowRecord>,
    /// The same windows ordered by expiry, for pruning.
    window_expiry: OrdMap<(u64, WindowId), ()>,
    nodes: OrdMap<NodeName, NodeInfo>,
    requests: OrdMap<(ClientId, RequestId), AppliedRequest>,
    /// The same requests ordered by time, for pruning.
    request_expiry: OrdMap<(u64, ClientId, RequestId), ()>,
    /// The last version of every deleted entity id not registered again: a re-registration
    /// continues from it, so a version is never reused and an `If-Match` from before a delete
    /// can never match the recreated entity (one entry per deleted id; absent in older snapshots).
    #[serde(default)]
    retired: OrdMap<EntityId, u64>,
}

impl RegistryState {
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Applies the entry at `index` whose command bytes are `bytes`. Bytes that are not a proposal are
    /// refused (deterministically) rather than stopping the state machine.
    pub fn apply_bytes(&mut self, index: u64, bytes: &[u8]) -> Outcome {
        match decode_exact::<Proposal>(bytes) {
            Ok(p) => self.apply(index, &p),
            Err(e) => {
                self.applied_index = self.applied_index.max(index);
                Outcome::Refused(Refusal::Malformed(e.to_string()))
            }
        }
    }

    /// Applies one proposal at log index `index`.
    pub fn apply(&mut self, index: u64, p: &Proposal) -> Outcome {
        debug_assert!(
            index > self.applied_index,
            "entry {index} applied after {}",
            self.applied_index
        );
        self.applied_index = self.applied_index.max(index);
        self.clock_ms = step_clock(self.clock_ms, p.at_ms, self.config.max_clock_step_ms);
        self.expire();
        // The entry's time: the registry clock, or the stamp where it runs ahead of a clock held
        // back by the step bound (after an idle spell). Used where later is the safe side: how
        // long a window asked for, and from when a request id is remembered.
        let now = self.clock_ms;
        let stamped = p.at_ms.max(now);
        match &p.command {
            Command::RegisterClient { client, public_key } => {
                // The legacy command replaces a key, but never brings a revoked client back.
                if self.clients.get(client).is_some_and(|c| c.revoked) {
                    return Outcome::Refused(Refusal::ClientRevoked);
                }
                self.clients.insert(
                    client.clone(),
                    ClientRecord {
                        public_key: *public_key,
                        revoked: false,
                        registered_index: index,
                    },
                );
                Outcome::ClientRegistered
            }
            Command::RevokeClient { client } => match self.clients.get_mut(client) {
                None => Outcome::Refused(Refusal::UnknownClient),
                Some(rec) => {
                    rec.revoked = true;
                    self.close_windows_of(client);
                    Outcome::ClientRevoked
                }
            },
            Command::EnrollClient { client, public_key } => {
                self.enroll_client(index, client, *public_key)
            }
            Command::RotateClient { client, public_key } => {
                self.rotate_client(index, client, *public_key)
            }
            Command::OpenWindow {
                client,
                window,
                expires_at_ms,
                client_dh,
            } => self.open_window(client, window, stamped, *expires_at_ms, *client_dh),
            Command::CloseWindow { client, window } => match self.windows.get(window) {
                Some(w) if &w.client == client => {
                    self.close_window(window);
                    Outcome::WindowClosed
                }
                Some(_) => Outcome::Refused(Refusal::WindowOfAnotherClient),
                None => Outcome::Refused(Refusal::UnknownWindow),
            },
            Command::PutEntity {
                origin,
                id,
                items,
                placement,
                expected_version,
            } => self.once(origin, stamped, |s| {
                s.put_entity(index, origin, id, items, placement, *expected_version)
            }),
            Command::DeleteEntity {
                origin,
                id,
                expected_version,
            } => self.once(origin, stamped, |s| {
                s.delete_entity(index, origin, id, *expected_version)
            }),
            Command::SetNode { node, info } => {
                self.nodes.insert(node.clone(), info.clone());
                Outcome::NodeSet
            }
            Command::RemoveNode { node } => {
                self.nodes.remove(node);
                Outcome::NodeRemoved
            }
            Command::GrantAccess {
                origin,
                id,
                grantee,
                access,
            } => self.once(origin, stamped, |s| {
                s.set_grant(index, origin, id, grantee, Some(*access))
            }),
            Command::RevokeAccess {
                origin,
                id,
                grantee,
            } => self.once(origin, stamped, |s| {
                s.set_grant(index, origin, id, grantee, None)
            }),
            Command::MovePlacements { moves } => self.move_placements(index, moves),
        }
    }

    /// Applies the moves whose entity is still at the version and placement the rebalancer saw.
    /// A moved entity's `index` becomes this entry's: store items copied for the new placement
    /// are fenced by it, so they pass any tombstone an earlier removal from that node left.
    fn move_placements(&mut self, index: u64, moves: &[PlacementMove]) -> Outcome {
        let (mut moved, mut skipped) = (0, 0);
        for m in moves {
            let applies = valid_placement(&m.to)
                && self
                    .entities
                    .get(&m.id)
                    .is_some_and(|e| e.version == m.version && e.placement == m.from);
            let to = applies.then(|| m.to.iter().map(|n| self.shared_node(n)).collect());
            match (self.entities.get_mut(&m.id), to) {
                (Some(e), Some(to)) => {
                    e.placement = to;
                    e.index = index;
                    moved += 1;
                }
                _ => skipped += 1,
            }
        }
        Outcome::PlacementsMoved {
            moved,
            skipped,
            index,
        }
    }

    /// Admin-only enrollment (the proxy checks the admin token before proposing): a key is set
    /// once; the same key again is a no-op success so that retries and re-runs are harmless.
    fn enroll_client(&mut self, index: u64, client: &ClientId, public_key: PublicKey) -> Outcome {
        match self.clients.get(client) {
            Some(c) if c.revoked => Outcome::Refused(Refusal::ClientRevoked),
            Some(c) if c.public_key == public_key => Outcome::ClientRegistered,
            Some(_) => Outcome::Refused(Refusal::ClientExists),
            None => {
                self.clients.insert(
                    client.clone(),
                    ClientRecord {
                        public_key,
                        revoked: false,
                        registered_index: index,
                    },
                );
                Outcome::ClientRegistered
            }
        }
    }

    /// An explicit key rotation: windows opened under the old key are closed with it, since
    /// whoever held the old key may hold their window keys too.
    fn rotate_client(&mut self, index: u64, client: &ClientId, public_key: PublicKey) -> Outcome {
        match self.clients.get_mut(client) {
            None => Outcome::Refused(Refusal::UnknownClient),
            Some(c) if c.revoked => Outcome::Refused(Refusal::ClientRevoked),
            Some(c) => {
                c.public_key = public_key;
                c.registered_index = index;
                let windows_closed = self.close_windows_of(client);
                Outcome::ClientRotated { windows_closed }
            }
        }
    }

    /// Closes every window of `client`, answering how many there were.
    fn close_windows_of(&mut self, client: &ClientId) -> u64 {
        let closed: Vec<WindowId> = self
            .windows
            .iter()
            .filter(|(_, w)| &w.client == client)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &closed {
            self.close_window(id);
        }
        closed.len() as u64
    }

    fn open_window(
        &mut self,
        client: &ClientId,
        window: &WindowId,
        at_ms: u64,
        expires_at_ms: u64,
        client_dh: PublicKey,
    ) -> Outcome {
        match self.clients.get(client) {
            None => return Outcome::Refused(Refusal::UnknownClient),
            Some(c) if c.revoked => return Outcome::Refused(Refusal::ClientRevoked),
            Some(_) => {}
        }
        if self.windows.contains_key(window) {
            return Outcome::Refused(Refusal::DuplicateWindow);
        }
        let asked_ms = expires_at_ms.saturating_sub(at_ms);
        if asked_ms > self.config.max_window_ms {
            return Outcome::Refused(Refusal::WindowTooLong {
                asked_ms,
                max_ms: self.config.max_window_ms,
            });
        }
        if expires_at_ms <= self.clock_ms {
            return Outcome::Refused(Refusal::WindowExpired);
        }
        self.window_expiry
            .insert((expires_at_ms, window.clone()), ());
        self.windows.insert(
            window.clone(),
            WindowRecord {
                client: client.clone(),
                opened_at_ms: at_ms,
                expires_at_ms,
                client_dh,
            },
        );
        Outcome::WindowOpened { expires_at_ms }
    }

    /// Runs a client command once per (client, request id): a retry (same fingerprint) returns the
    /// remembered outcome and changes nothing; another request under a remembered id is refused as a
    /// replay. The origin's window is checked first, as of the proposal's time.
    fn once(
        &mut self,
        origin: &Origin,
        at_ms: u64,
        run: impl FnOnce(&mut Self) -> Outcome,
    ) -> Outcome {
        let key = (self.shared_client(&origin.client), origin.request.clone());
        if let Some(prev) = self.requests.get(&key) {
            if prev.fingerprint != origin.fingerprint {
                return Outcome::Refused(Refusal::ReplayedRequest);
            }
            return prev.outcome.clone();
        }
        let outcome = match self.check_origin(origin, at_ms) {
            Err(refusal) => return Outcome::Refused(refusal),
            Ok(()) => run(self),
        };
        self.request_expiry
            .insert((at_ms, key.0.clone(), key.1.clone()), ());
        self.requests.insert(
            key,
            AppliedRequest {
                at_ms,
                fingerprint: origin.fingerprint,
                outcome: outcome.clone(),
            },
        );
        outcome
    }

    /// `client` as the registry already holds it, if it does: a copy that shares its allocation
    /// (names are reference-counted), so a million entities of one owner hold one name.
    fn shared_client(&self, client: &ClientId) -> ClientId {
        self.clients
            .get_key_value(client)
            .map_or_else(|| client.clone(), |(k, _)| k.clone())
    }

    /// `node` as the registry already holds it, if it does (see [`Self::shared_client`]).
    fn shared_node(&self, node: &NodeName) -> NodeName {
        self.nodes
            .get_key_value(node)
            .map_or_else(|| node.clone(), |(k, _)| k.clone())
    }

    fn check_origin(&self, origin: &Origin, at_ms: u64) -> Result<(), Refusal> {
        match self.clients.get(&origin.client) {
            None => return Err(Refusal::UnknownClient),
            Some(c) if c.revoked => return Err(Refusal::ClientRevoked),
            Some(_) => {}
        }
        let w = self
            .windows
            .get(&origin.window)
            .ok_or(Refusal::UnknownWindow)?;
        if w.client != origin.client {
            return Err(Refusal::WindowOfAnotherClient);
        }
        if at_ms >= w.expires_at_ms {
            return Err(Refusal::WindowExpired);
        }
        Ok(())
    }

    fn put_entity(
        &mut self,
        index: u64,
        origin: &Origin,
        id: &EntityId,
        items: &BTreeMap<ModalityKind, ItemMeta>,
        placement: &[NodeName],
        expected_version: Option<u64>,
    ) -> Outcome {
        if MODALITIES.iter().any(|m| !items.contains_key(m)) {
            return Outcome::Refused(Refusal::MissingModality);
        }
        if !valid_placement(placement) {
            return Outcome::Refused(Refusal::BadPlacement);
        }
        let existing = self.entities.get(id);
        // Ownership before versions: a client that may not write learns nothing from If-Match.
        // Registering a taken id (expected 0) is a conflict for everyone: ids are one namespace.
        if let Some(e) = existing
            && expected_version != Some(0)
            && !e.can_write(&origin.client)
        {
            return Outcome::Refused(e.refuse(&origin.client));
        }
        let current = existing.map_or(0, |e| e.version);
        if let Some(expected) = expected_version
            && expected != current
        {
            return Outcome::Refused(Refusal::VersionConflict {
                expected,
                actual: current,
            });
        }
        // An update keeps the owner, the grants and the placement (the proposer's copy of it may
        // be older than a rebalancer's move committed meanwhile); a registration makes the writer
        // the owner and takes the proposed placement.
        let (owner, grants, placement) = existing.map_or_else(
            || {
                let placement = placement.iter().map(|n| self.shared_node(n)).collect();
                (
                    self.shared_client(&origin.client),
                    BTreeMap::new(),
                    placement,
                )
            },
            |e| (e.owner.clone(), e.grants.clone(), e.placement.clone()),
        );
        let version = match existing {
            Some(_) => current + 1,
            None => self.retired.remove(id).unwrap_or(0) + 1,
        };
        self.entities.insert(
            id.clone(),
            EntityMeta {
                version,
                items: Items::from(items),
                placement,
                owner,
                index,
                grants,
            },
        );
        Outcome::EntityPut { version, index }
    }

    fn delete_entity(
        &mut self,
        index: u64,
        origin: &Origin,
        id: &EntityId,
        expected_version: Option<u64>,
    ) -> Outcome {
        let Some(e) = self.entities.get(id) else {
            return Outcome::Refused(Refusal::UnknownEntity);
        };
        if !e.can_write(&origin.client) {
            return Outcome::Refused(e.refuse(&origin.client));
        }
        let current = e.version;
        if let Some(expected) = expected_version
            && expected != current
        {
            return Outcome::Refused(Refusal::VersionConflict {
                expected,
                actual: current,
            });
        }
        self.entities.remove(id);
        self.retired.insert(id.clone(), current);
        Outcome::EntityDeleted {
            version: current,
            index,
        }
    }

    /// Sets (`Some`) or withdraws (`None`) `grantee`'s grant on entity `id`: the owner only.
    fn set_grant(
        &mut self,
        index: u64,
        origin: &Origin,
        id: &EntityId,
        grantee: &ClientId,
        access: Option<Access>,
    ) -> Outcome {
        let Some(e) = self.entities.get(id) else {
            return Outcome::Refused(Refusal::UnknownEntity);
        };
        if e.owner != origin.client {
            return Outcome::Refused(e.refuse(&origin.client));
        }
        if &e.owner == grantee {
            return Outcome::Refused(Refusal::GrantToOwner);
        }
        if access.is_some() && !self.clients.contains_key(grantee) {
            return Outcome::Refused(Refusal::UnknownGrantee);
        }
        if let Some(e) = self.entities.get_mut(id) {
            match access {
                Some(a) => {
                    e.grants.insert(grantee.clone(), a);
                }
                None => {
                    e.grants.remove(grantee);
                }
            }
        }
        Outcome::GrantChanged { index }
    }

    /// Drops remembered requests older than the retention horizon, and windows that expired before it
    /// (expired windows are kept that long so a late request is told "expired", not "unknown").
    fn expire(&mut self) {
        let horizon = self
            .clock_ms
            .saturating_sub(self.config.request_retention_ms);
        while let Some(((expires, id), ())) = self.window_expiry.get_min().cloned() {
            if expires > horizon {
                break;
            }
            self.window_expiry.remove(&(expires, id.clone()));
            self.windows.remove(&id);
        }
        while let Some(((at, client, request), ())) = self.request_expiry.get_min().cloned() {
            if at >= horizon {
                break;
            }
            self.request_expiry
                .remove(&(at, client.clone(), request.clone()));
            self.requests.remove(&(client, request));
        }
    }

    fn close_window(&mut self, id: &WindowId) {
        if let Some(w) = self.windows.remove(id) {
            self.window_expiry.remove(&(w.expires_at_ms, id.clone()));
        }
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    pub fn entity(&self, id: &EntityId) -> Option<&EntityMeta> {
        self.entities.get(id)
    }

    pub fn entities(&self) -> impl Iterator<Item = (&EntityId, &EntityMeta)> {
        self.entities.iter()
    }

    /// Entities with a replica on `node`, in id order: what the drift checker compares a node's stores with.
    pub fn entities_on<'a>(
        &'a self,
        node: &'a NodeName,
    ) -> impl Iterator<Item = (&'a EntityId, &'a EntityMeta)> + 'a {
        self.entities
            .iter()
            .filter(move |(_, e)| e.placement.contains(node))
    }

    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Registered client identities, revoked ones included.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Trust windows held (expired ones stay until the next pruning).
    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    pub fn client(&self, id: &ClientId) -> Option<&ClientRecord> {
        self.clients.get(id)
    }

    /// The window `id`, open or recently expired.
    pub fn window(&self, id: &WindowId) -> Option<&WindowRecord> {
        self.windows.get(id)
    }

    /// The window `id` if it is open for `client` at time `now_ms` (a proxy's local lookup).
    pub fn open_window_for(
        &self,
        id: &WindowId,
        client: &ClientId,
        now_ms: u64,
    ) -> Option<&WindowRecord> {
        self.windows
            .get(id)
            .filter(|w| &w.client == client && now_ms < w.expires_at_ms)
    }

    pub fn nodes(&self) -> &OrdMap<NodeName, NodeInfo> {
        &self.nodes
    }

    /// The outcome remembered for a client's request, if it is still within the retention horizon.
    pub fn applied_request(
        &self,
        client: &ClientId,
        request: &RequestId,
    ) -> Option<&AppliedRequest> {
        self.requests.get(&(client.clone(), request.clone()))
    }

    /// The registry of a restored backup on a new cluster whose only node is `node`: every entity
    /// placed on it alone (its stores receive every payload), the old nodes' addresses forgotten
    /// (each node records its own once it can commit).
    pub fn rehome(&mut self, node: &NodeName) {
        let ids: Vec<EntityId> = self.entities.keys().cloned().collect();
        for id in ids {
            if let Some(e) = self.entities.get_mut(&id) {
                e.placement = vec![node.clone()];
            }
        }
        self.nodes = OrdMap::new();
    }

    /// Puts an entity in place as it is (unit tests of what reads a registry; feature `test-util`
    /// for other crates' tests).
    #[cfg(any(test, feature = "test-util"))]
    pub fn insert_entity(&mut self, id: EntityId, meta: EntityMeta) {
        self.entities.insert(id, meta);
    }

    /// Writes the snapshot body in the compact format ([`FORMAT_COMPACT`], see `codec`) to `out`,
    /// in blocks: never whole in memory.
    pub fn write_snapshot_body(&self, out: &mut dyn Write) -> io::Result<()> {
        codec::write(self, out)
    }

    /// Reads a snapshot body of `format` ([`FORMAT_CBOR`] or [`FORMAT_COMPACT`]) from `body`, to its
    /// end: bytes after the state are refused.
    pub fn read_snapshot_body(
        format: u32,
        body: &mut dyn BufRead,
    ) -> Result<Self, SnapshotBodyError> {
        codec::read(format, body)
    }

    /// The whole state as CBOR: the body of format-1 snapshots and of backups, and what
    /// [`RegistryState::digest`] hashes.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(self)
    }

    /// Rebuilds a state from its CBOR; trailing bytes are refused.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, super::command::DecodeError> {
        decode_exact(bytes)
    }

    /// BLAKE3 of the canonical encoding: equal on every replica that applied the same log.
    pub fn digest(&self) -> ContentHash {
        ContentHash(*blake3::hash(&self.to_cbor()).as_bytes())
    }
}

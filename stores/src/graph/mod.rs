//! Graph engine: nodes with properties, and directed, typed edges (source, predicate, target,
//! properties) between entity ids.
//!
//! Keyspaces: `graph.node` (`id` → CBOR properties), `graph.out` (`source 0 predicate 0 target` →
//! CBOR edge properties), `graph.in` (`target 0 predicate 0 source` → empty, for in-neighbours),
//! `graph.meta` (node and edge counters), plus the `graph.hash`/`graph.digest` index. `0x00` cannot
//! occur in ids or predicates, so key order is (source, predicate, target) order and a prefix scan
//! on `source 0` or `source 0 predicate 0` finds exactly the matching edges.
//!
//! An entity's **item** is its node (properties) plus its outgoing edges; it exists once the node is
//! put. An edge needs its source node to exist (it belongs to the source's item) but not its target
//! (so a replica can import one entity before its neighbours). Removing an entity's item
//! ([`GraphStore::remove_node`], what the node's store actor does) removes its node and outgoing
//! edges only: edges of other entities that point to it stay, dangling, exactly as they were before
//! it was registered, so no other entity's item (and registry hash) changes. [`GraphStore::delete_node`]
//! also cuts the incoming edges, for embedded use, and returns every changed hash.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Range;

use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};

use crate::EntityId;
use crate::codec::{from_cbor_exact, to_cbor};
use crate::durability::Durability;
use crate::error::{Result, StoreError, corrupt};
use crate::hash::{BucketDigest, ContentHash};
use crate::id::validate_name;
use crate::index::{ItemIndex, check_recorded};
use crate::keyspace;
use crate::limits::Limits;
use crate::modality::{ExportedItem, Modality, ModalityKind};
use crate::value::Value;

/// Property map of a node or edge (ordered, so its encoding is canonical).
pub type Properties = BTreeMap<String, Value>;

/// A directed, typed edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Where the edge starts (its owner).
    pub source: EntityId,
    /// The edge type, `[A-Za-z0-9._:/#-]{1,128}`.
    pub predicate: String,
    /// Where the edge points.
    pub target: EntityId,
    /// Edge properties.
    pub properties: Properties,
}

/// Which edges a neighbour query or traversal follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// source → target.
    Out,
    /// target → source.
    In,
    /// Both.
    Both,
}

/// Node and edge counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphCounts {
    /// Number of nodes.
    pub nodes: u64,
    /// Number of edges.
    pub edges: u64,
}

/// An outgoing edge inside an item (the source is the item's entity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutEdge {
    /// The edge type.
    pub predicate: String,
    /// Where it points.
    pub target: EntityId,
    /// Edge properties.
    pub properties: Properties,
}

/// One entity's graph item: what is hashed, exported and imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphItem {
    /// Node properties.
    pub properties: Properties,
    /// Outgoing edges, sorted by (predicate, target), no duplicates.
    pub edges: Vec<OutEdge>,
}

/// What [`GraphStore::delete_node`] changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteOutcome {
    /// True if the node existed.
    pub existed: bool,
    /// Every entity whose item changed, with its new hash (`None`: item gone), ordered by id.
    pub changed: Vec<(EntityId, Option<ContentHash>)>,
}

const NODES_KEY: &[u8] = b"nodes";
const EDGES_KEY: &[u8] = b"edges";

/// The graph engine. Writes take `&mut self` (one writer, as in an actor); reads take `&self`.
pub struct GraphStore {
    db: Database,
    nodes: Keyspace,
    out: Keyspace,
    inc: Keyspace,
    meta: Keyspace,
    index: ItemIndex,
    limits: Limits,
    durability: Durability,
    counts: GraphCounts,
}

fn key3(a: &[u8], b: &[u8], c: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + c.len() + 2);
    k.extend_from_slice(a);
    k.push(0);
    k.extend_from_slice(b);
    k.push(0);
    k.extend_from_slice(c);
    k
}

fn prefix(a: &[u8], b: Option<&str>) -> Vec<u8> {
    let mut k = a.to_vec();
    k.push(0);
    if let Some(b) = b {
        k.extend_from_slice(b.as_bytes());
        k.push(0);
    }
    k
}

/// Splits `a 0 b 0 c` into its three parts.
fn split3(k: &[u8]) -> Result<(EntityId, String, EntityId)> {
    let mut parts = k.splitn(3, |b| *b == 0);
    let (Some(a), Some(b), Some(c)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt("stored edge key", "fewer than three parts"));
    };
    let pred = String::from_utf8(b.to_vec())
        .map_err(|_| corrupt("stored edge key", "predicate is not UTF-8"))?;
    Ok((
        crate::id::entity_id_from_key(a)?,
        pred,
        crate::id::entity_id_from_key(c)?,
    ))
}

fn read_u64(ks: &Keyspace, key: &[u8]) -> Result<u64> {
    match ks.get(key)? {
        Some(v) => Ok(u64::from_be_bytes(
            v.as_ref()
                .try_into()
                .map_err(|_| corrupt("graph counter", "not 8 bytes"))?,
        )),
        None => Ok(0),
    }
}

impl GraphStore {
    /// Opens the graph keyspaces of `db`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(db: &Database, limits: &Limits) -> Result<Self> {
        let meta = keyspace::open(db, "graph.meta")?;
        let counts = GraphCounts {
            nodes: read_u64(&meta, NODES_KEY)?,
            edges: read_u64(&meta, EDGES_KEY)?,
        };
        Ok(Self {
            db: db.clone(),
            nodes: keyspace::open(db, "graph.node")?,
            out: keyspace::open(db, "graph.out")?,
            inc: keyspace::open(db, "graph.in")?,
            meta,
            index: ItemIndex::open(db, "graph")?,
            limits: limits.clone(),
            durability: Durability::EachWrite,
            counts,
        })
    }

    fn check_props(&self, props: &Properties) -> Result<()> {
        for (k, v) in props {
            validate_name("property name", k)?;
            v.check(k)?;
        }
        let size = to_cbor(props)?.len();
        if size > self.limits.max_properties_bytes {
            return Err(StoreError::LimitExceeded {
                what: "encoded property map",
                limit: self.limits.max_properties_bytes as u64,
                actual: size as u64,
            });
        }
        Ok(())
    }

    /// Loads an entity's item (node record plus outgoing edges).
    fn load(&self, id: &EntityId) -> Result<Option<GraphItem>> {
        let Some(v) = self.nodes.get(id.as_bytes())? else {
            return Ok(None);
        };
        let properties: Properties = from_cbor_exact("stored graph node", &v)?;
        let mut edges = Vec::new();
        for g in self.out.prefix(prefix(id.as_bytes(), None)) {
            let (k, v) = g.into_inner()?;
            let (_, predicate, target) = split3(&k)?;
            edges.push(OutEdge {
                predicate,
                target,
                properties: from_cbor_exact("stored graph edge", &v)?,
            });
        }
        Ok(Some(GraphItem { properties, edges }))
    }

    fn item_hash_of(item: &GraphItem) -> Result<ContentHash> {
        Ok(ContentHash::of(
            ModalityKind::Graph.hash_domain(),
            &to_cbor(item)?,
        ))
    }

    /// Writes the difference between `old` and `new` for one entity into `w`.
    fn stage(
        &self,
        w: &mut Staged,
        id: &EntityId,
        old: Option<&GraphItem>,
        new: Option<&GraphItem>,
    ) -> Result<Option<ContentHash>> {
        let edge_map = |it: Option<&GraphItem>| -> BTreeMap<(String, EntityId), Properties> {
            it.map(|i| {
                i.edges
                    .iter()
                    .map(|e| {
                        (
                            (e.predicate.clone(), e.target.clone()),
                            e.properties.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let (om, nm) = (edge_map(old), edge_map(new));
        for ((p, t), _) in om.iter().filter(|(k, _)| !nm.contains_key(*k)) {
            w.batch
                .remove(&self.out, key3(id.as_bytes(), p.as_bytes(), t.as_bytes()));
            w.batch
                .remove(&self.inc, key3(t.as_bytes(), p.as_bytes(), id.as_bytes()));
            w.edges -= 1;
        }
        for ((p, t), props) in &nm {
            match om.get(&(p.clone(), t.clone())) {
                Some(op) if op == props => {}
                found => {
                    w.batch.insert(
                        &self.out,
                        key3(id.as_bytes(), p.as_bytes(), t.as_bytes()),
                        to_cbor(props)?,
                    );
                    if found.is_none() {
                        w.batch.insert(
                            &self.inc,
                            key3(t.as_bytes(), p.as_bytes(), id.as_bytes()),
                            Vec::<u8>::new(),
                        );
                        w.edges += 1;
                    }
                }
            }
        }
        let hash = match new {
            Some(n) => {
                if old.map(|o| &o.properties) != Some(&n.properties) {
                    w.batch
                        .insert(&self.nodes, id.as_bytes(), to_cbor(&n.properties)?);
                }
                if old.is_none() {
                    w.nodes += 1;
                }
                Some(Self::item_hash_of(n)?)
            }
            None => {
                if old.is_some() {
                    w.batch.remove(&self.nodes, id.as_bytes());
                    w.nodes -= 1;
                }
                None
            }
        };
        w.hashes.insert(id.clone(), hash);
        Ok(hash)
    }

    fn commit(&mut self, w: Staged) -> Result<()> {
        let Staged {
            mut batch,
            nodes,
            edges,
            hashes,
        } = w;
        let mut txn = self.index.txn();
        for (id, h) in &hashes {
            txn.set(id, *h);
        }
        txn.write(&mut batch)?;
        let counts = GraphCounts {
            nodes: self.counts.nodes.saturating_add_signed(nodes),
            edges: self.counts.edges.saturating_add_signed(edges),
        };
        if nodes != 0 {
            batch.insert(&self.meta, NODES_KEY, counts.nodes.to_be_bytes().to_vec());
        }
        if edges != 0 {
            batch.insert(&self.meta, EDGES_KEY, counts.edges.to_be_bytes().to_vec());
        }
        batch.commit()?;
        self.counts = counts;
        Ok(())
    }

    fn staged(&self) -> Staged {
        Staged {
            batch: self.durability.batch(&self.db),
            nodes: 0,
            edges: 0,
            hashes: BTreeMap::new(),
        }
    }

    /// Creates a node or replaces its properties (its edges are kept). Returns the item's new hash.
    ///
    /// # Errors
    /// Invalid property names or values, [`StoreError::LimitExceeded`], storage errors.
    pub fn put_node(&mut self, id: &EntityId, properties: Properties) -> Result<ContentHash> {
        self.check_props(&properties)?;
        let old = self.load(id)?;
        let mut new = old.clone().unwrap_or(GraphItem {
            properties: Properties::new(),
            edges: Vec::new(),
        });
        new.properties = properties;
        let mut w = self.staged();
        let h = self.stage(&mut w, id, old.as_ref(), Some(&new))?;
        self.commit(w)?;
        Ok(h.unwrap_or_default())
    }

    /// The node's properties, if the node exists.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get_node(&self, id: &EntityId) -> Result<Option<Properties>> {
        match self.nodes.get(id.as_bytes())? {
            Some(v) => Ok(Some(from_cbor_exact("stored graph node", &v)?)),
            None => Ok(None),
        }
    }

    /// The entity's whole item (node properties and outgoing edges).
    ///
    /// # Errors
    /// Storage errors.
    pub fn get_item(&self, id: &EntityId) -> Result<Option<GraphItem>> {
        self.load(id)
    }

    /// Adds edges (or replaces their properties if the same (source, predicate, target) exists), all
    /// in one durable batch. Returns the new hash of every source entity.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if a source node does not exist; invalid predicates or properties;
    /// [`StoreError::LimitExceeded`] past `max_out_edges`. Nothing is written on error.
    pub fn add_edges(&mut self, edges: Vec<Edge>) -> Result<Vec<(EntityId, ContentHash)>> {
        let mut by_source: BTreeMap<EntityId, Vec<Edge>> = BTreeMap::new();
        for e in edges {
            validate_name("predicate", &e.predicate)?;
            self.check_props(&e.properties)?;
            by_source.entry(e.source.clone()).or_default().push(e);
        }
        let mut w = self.staged();
        let mut out = Vec::new();
        for (src, es) in by_source {
            let Some(old) = self.load(&src)? else {
                return Err(StoreError::NotFound {
                    what: "graph node",
                    name: src.to_string(),
                });
            };
            let mut m: BTreeMap<(String, EntityId), Properties> = old
                .edges
                .iter()
                .map(|e| {
                    (
                        (e.predicate.clone(), e.target.clone()),
                        e.properties.clone(),
                    )
                })
                .collect();
            for e in es {
                m.insert((e.predicate, e.target), e.properties);
            }
            if m.len() > self.limits.max_out_edges {
                return Err(StoreError::LimitExceeded {
                    what: "outgoing edges of one entity",
                    limit: self.limits.max_out_edges as u64,
                    actual: m.len() as u64,
                });
            }
            let new = GraphItem {
                properties: old.properties.clone(),
                edges: m
                    .into_iter()
                    .map(|((predicate, target), properties)| OutEdge {
                        predicate,
                        target,
                        properties,
                    })
                    .collect(),
            };
            let h = self.stage(&mut w, &src, Some(&old), Some(&new))?;
            out.push((src, h.unwrap_or_default()));
        }
        self.commit(w)?;
        Ok(out)
    }

    /// Adds one edge; see [`GraphStore::add_edges`]. Returns the source's new hash.
    ///
    /// # Errors
    /// As [`GraphStore::add_edges`].
    pub fn add_edge(&mut self, edge: Edge) -> Result<ContentHash> {
        let mut v = self.add_edges(vec![edge])?;
        Ok(v.pop().map(|(_, h)| h).unwrap_or_default())
    }

    /// Removes one edge. Returns the source's new hash, or `None` if there was no such edge.
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove_edge(
        &mut self,
        source: &EntityId,
        predicate: &str,
        target: &EntityId,
    ) -> Result<Option<ContentHash>> {
        let Some(old) = self.load(source)? else {
            return Ok(None);
        };
        let mut new = old.clone();
        new.edges
            .retain(|e| !(e.predicate == predicate && &e.target == target));
        if new.edges.len() == old.edges.len() {
            return Ok(None);
        }
        let mut w = self.staged();
        let h = self.stage(&mut w, source, Some(&old), Some(&new))?;
        self.commit(w)?;
        Ok(h)
    }

    /// Removes one entity's item, its node and outgoing edges, and nothing else: edges of other
    /// entities that point to it stay (dangling, as before it existed). Returns whether it existed.
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove_node(&mut self, id: &EntityId) -> Result<bool> {
        let Some(old) = self.load(id)? else {
            return Ok(false);
        };
        let mut w = self.staged();
        self.stage(&mut w, id, Some(&old), None)?;
        self.commit(w)?;
        Ok(true)
    }

    /// Deletes a node with all its outgoing and incoming edges, in one durable batch. Incoming
    /// edges belong to other entities' items, whose hashes change: for embedded use, where no
    /// registry records them (the node's stores use [`GraphStore::remove_node`]).
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete_node(&mut self, id: &EntityId) -> Result<DeleteOutcome> {
        let old = self.load(id)?;
        let mut sources = BTreeSet::new();
        for g in self.inc.prefix(prefix(id.as_bytes(), None)) {
            let (_, _, src) = split3(&g.key()?)?;
            if &src != id {
                sources.insert(src);
            }
        }
        if old.is_none() && sources.is_empty() {
            return Ok(DeleteOutcome::default());
        }
        let mut w = self.staged();
        let mut changed = BTreeMap::new();
        for src in sources {
            let Some(o) = self.load(&src)? else { continue };
            let mut n = o.clone();
            n.edges.retain(|e| &e.target != id);
            let h = self.stage(&mut w, &src, Some(&o), Some(&n))?;
            changed.insert(src, h);
        }
        self.stage(&mut w, id, old.as_ref(), None)?;
        changed.insert(id.clone(), None);
        self.commit(w)?;
        Ok(DeleteOutcome {
            existed: old.is_some(),
            changed: changed.into_iter().collect(),
        })
    }

    /// Outgoing edges of `id`, optionally only those with `predicate`, ordered by (predicate, target).
    ///
    /// # Errors
    /// Storage errors.
    pub fn out_edges(&self, id: &EntityId, predicate: Option<&str>) -> Result<Vec<Edge>> {
        let mut v = Vec::new();
        for g in self.out.prefix(prefix(id.as_bytes(), predicate)) {
            let (k, val) = g.into_inner()?;
            let (source, predicate, target) = split3(&k)?;
            v.push(Edge {
                source,
                predicate,
                target,
                properties: from_cbor_exact("stored graph edge", &val)?,
            });
        }
        Ok(v)
    }

    /// Incoming edges of `id`, optionally only those with `predicate`, ordered by (predicate, source).
    ///
    /// # Errors
    /// Storage errors.
    pub fn in_edges(&self, id: &EntityId, predicate: Option<&str>) -> Result<Vec<Edge>> {
        let mut v = Vec::new();
        for g in self.inc.prefix(prefix(id.as_bytes(), predicate)) {
            let (target, predicate, source) = split3(&g.key()?)?;
            let props = match self.out.get(key3(
                source.as_bytes(),
                predicate.as_bytes(),
                target.as_bytes(),
            ))? {
                Some(p) => from_cbor_exact("stored graph edge", &p)?,
                None => return Err(corrupt("graph in-edge", "no matching out-edge")),
            };
            v.push(Edge {
                source,
                predicate,
                target,
                properties: props,
            });
        }
        Ok(v)
    }

    /// Distinct neighbours of `id` in `dir`, optionally only along `predicate`, sorted by id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn neighbours(
        &self,
        id: &EntityId,
        dir: Direction,
        predicate: Option<&str>,
    ) -> Result<Vec<EntityId>> {
        let mut set = BTreeSet::new();
        if matches!(dir, Direction::Out | Direction::Both) {
            for g in self.out.prefix(prefix(id.as_bytes(), predicate)) {
                set.insert(split3(&g.key()?)?.2);
            }
        }
        if matches!(dir, Direction::In | Direction::Both) {
            for g in self.inc.prefix(prefix(id.as_bytes(), predicate)) {
                set.insert(split3(&g.key()?)?.2);
            }
        }
        Ok(set.into_iter().collect())
    }

    fn check_hops(&self, hops: u32) -> Result<()> {
        if hops > self.limits.max_hops {
            return Err(StoreError::LimitExceeded {
                what: "hops",
                limit: u64::from(self.limits.max_hops),
                actual: u64::from(hops),
            });
        }
        Ok(())
    }

    /// Breadth-first traversal from `start` up to `max_hops` hops: every reachable entity (the start
    /// included, at depth 0) with its hop distance, in BFS order (neighbours visited in id order).
    ///
    /// # Errors
    /// [`StoreError::LimitExceeded`] if `max_hops` is above the limit or more than `max_visited`
    /// entities are reached; storage errors.
    pub fn traverse(
        &self,
        start: &EntityId,
        max_hops: u32,
        dir: Direction,
        predicate: Option<&str>,
    ) -> Result<Vec<(EntityId, u32)>> {
        self.check_hops(max_hops)?;
        let mut seen = HashSet::from([start.clone()]);
        let mut order = vec![(start.clone(), 0)];
        let mut q = VecDeque::from([(start.clone(), 0u32)]);
        while let Some((n, d)) = q.pop_front() {
            if d == max_hops {
                continue;
            }
            for m in self.neighbours(&n, dir, predicate)? {
                if seen.insert(m.clone()) {
                    if seen.len() > self.limits.max_visited {
                        return Err(StoreError::LimitExceeded {
                            what: "entities visited by a traversal",
                            limit: self.limits.max_visited as u64,
                            actual: seen.len() as u64,
                        });
                    }
                    order.push((m.clone(), d + 1));
                    q.push_back((m, d + 1));
                }
            }
        }
        Ok(order)
    }

    /// An unweighted shortest path from `from` to `to` of at most `max_hops` edges, both ends
    /// included (`[from]` if they are equal), or `None`. Among equally short paths, the one found by
    /// BFS visiting neighbours in id order.
    ///
    /// # Errors
    /// As [`GraphStore::traverse`].
    pub fn shortest_path(
        &self,
        from: &EntityId,
        to: &EntityId,
        max_hops: u32,
        dir: Direction,
        predicate: Option<&str>,
    ) -> Result<Option<Vec<EntityId>>> {
        self.check_hops(max_hops)?;
        if from == to {
            return Ok(Some(vec![from.clone()]));
        }
        let mut parent: HashMap<EntityId, EntityId> = HashMap::new();
        let mut q = VecDeque::from([(from.clone(), 0u32)]);
        let mut seen = HashSet::from([from.clone()]);
        while let Some((n, d)) = q.pop_front() {
            if d == max_hops {
                continue;
            }
            for m in self.neighbours(&n, dir, predicate)? {
                if !seen.insert(m.clone()) {
                    continue;
                }
                if seen.len() > self.limits.max_visited {
                    return Err(StoreError::LimitExceeded {
                        what: "entities visited by a path search",
                        limit: self.limits.max_visited as u64,
                        actual: seen.len() as u64,
                    });
                }
                parent.insert(m.clone(), n.clone());
                if &m == to {
                    let mut path = vec![m];
                    let mut cur = n.clone();
                    loop {
                        path.push(cur.clone());
                        match parent.get(&cur) {
                            Some(p) => cur = p.clone(),
                            None => break,
                        }
                    }
                    path.reverse();
                    return Ok(Some(path));
                }
                q.push_back((m, d + 1));
            }
        }
        Ok(None)
    }

    /// Node and edge counts (kept in `graph.meta`, O(1)).
    #[must_use]
    pub fn counts(&self) -> GraphCounts {
        self.counts
    }
}

impl GraphStore {
    /// Everything `import_item` checks about an item, without writing.
    fn check_item(&self, item: &GraphItem) -> Result<()> {
        self.check_props(&item.properties)?;
        for w in item.edges.windows(2) {
            if (&w[0].predicate, &w[0].target) >= (&w[1].predicate, &w[1].target) {
                return Err(StoreError::InvalidInput(
                    "graph item edges must be sorted by (predicate, target) without duplicates"
                        .into(),
                ));
            }
        }
        for e in &item.edges {
            validate_name("predicate", &e.predicate)?;
            self.check_props(&e.properties)?;
        }
        if item.edges.len() > self.limits.max_out_edges {
            return Err(StoreError::LimitExceeded {
                what: "outgoing edges of one entity",
                limit: self.limits.max_out_edges as u64,
                actual: item.edges.len() as u64,
            });
        }
        Ok(())
    }
}

struct Staged {
    batch: fjall::OwnedWriteBatch,
    nodes: i64,
    edges: i64,
    hashes: BTreeMap<EntityId, Option<ContentHash>>,
}

impl Modality for GraphStore {
    fn kind(&self) -> ModalityKind {
        ModalityKind::Graph
    }

    fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn item_hash(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        self.index.get(id)
    }

    fn verify_item(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        let recorded = self.index.get(id)?;
        let actual = match self.load(id)? {
            Some(item) => Some(Self::item_hash_of(&item)?),
            None => None,
        };
        check_recorded("graph item", id, recorded, actual)
    }

    fn bucket_digests(&self, buckets: Range<u16>) -> Result<Vec<(u16, BucketDigest)>> {
        self.index.digests(buckets)
    }

    fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>> {
        self.index.bucket_items(bucket)
    }

    fn export_item(&self, id: &EntityId) -> Result<Option<ExportedItem>> {
        match self.load(id)? {
            Some(item) => Ok(Some(ExportedItem::new(ModalityKind::Graph, id, &item)?)),
            None => Ok(None),
        }
    }

    fn import_item(&mut self, exported: &ExportedItem) -> Result<ContentHash> {
        let item: GraphItem = exported.open(ModalityKind::Graph)?;
        self.check_item(&item)?;
        let old = self.load(&exported.id)?;
        let mut w = self.staged();
        let h = self.stage(&mut w, &exported.id, old.as_ref(), Some(&item))?;
        self.commit(w)?;
        Ok(h.unwrap_or_default())
    }

    fn remove_item(&mut self, id: &EntityId) -> Result<bool> {
        self.remove_node(id)
    }
}

mod prepare;

#[cfg(test)]
mod tests;

//! The registry's snapshot body, written and read as a stream.
//!
//! Format 1 (until 2026-12-07) was the state's CBOR: maps with string keys, every field named in
//! every record, the modality names spelled out, the derived orders written too (418 B per entity
//! at 1M entities, 6.3 s to write). Format 2 is this compact binary encoding; format 1 still loads.
//!
//! ```text
//! body      = config applied_index clock_ms clients windows nodes entities retired requests
//! config    = bytes                              (CBOR of RegistryConfig: rare, and extensible)
//! clients   = n { client public_key:32 revoked:u8(0|1) registered_index }
//! windows   = n { bytes(window id) client opened_at_ms expires_at_ms client_dh:32 }
//! nodes     = n { node bytes(cluster_addr) bytes(http_addr) }
//! entities  = n { bytes(id) version items placement client(owner) index grants }
//!   items     = n { modality:u8(0 graph|1 vector|2 tensor|3 semantic) hash:32 size }
//!   placement = n { node }
//!   grants    = n { client access:u8(0 read|1 write) }
//! retired   = n { bytes(entity id) version }
//! requests  = n { client bytes(request id) at_ms fingerprint:32 outcome }
//!   outcome   = 1 version index (EntityPut) | 2 version index (EntityDeleted)
//!             | 3 index (GrantChanged) | 0 bytes(CBOR of the Outcome: any other)
//! ```
//!
//! Integers (`n`, lengths, indexes, times, versions, sizes) are unsigned LEB128 varints in their
//! shortest form. `client` and `node` name an entry of a table built as the body is read: `0`
//! followed by `bytes` adds the next entry, `k > 0` repeats entry `k − 1`, so the owner of a
//! million entities or a 3-node placement costs a byte per name. Maps are written in key order and
//! read back only in strictly increasing order (one encoding per state, like the CBOR before it).
//! The derived orders (windows by expiry, requests by time) are not written: they are rebuilt.
//! Decoding is strict: a bad tag, a non-minimal or overflowing varint, an invalid id, a reference
//! to no entry, keys out of order or bytes left over are errors; nothing is preallocated from a
//! count or length read from the body.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};

use imbl::OrdMap;

use verisim_vocab::{ContentHash, EntityId, Modality as ModalityKind};

use super::{AppliedRequest, ClientRecord, EntityMeta, Outcome, RegistryState, WindowRecord};
use crate::{
    Access, ClientId, ItemMeta, Items, NodeInfo, NodeName, PublicKey, RequestId, WindowId,
    decode_exact, encode,
};

/// The body format: the registry as CBOR.
pub const FORMAT_CBOR: u32 = 1;
/// The body format: this module's encoding.
pub const FORMAT_COMPACT: u32 = 2;

/// The encoder hands the writer blocks of this size (the snapshot file hashes what it is given:
/// large blocks hash fastest).
const BLOCK: usize = 1 << 20;
/// Strings up to this length are read in one go; longer ones grow as their bytes arrive, so a
/// corrupt length allocates nothing it cannot fill.
const SMALL: u64 = 4096;

/// Why a snapshot body did not decode.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotBodyError {
    /// The reader failed (the disk, not the bytes).
    #[error("reading the snapshot body: {0}")]
    Io(#[source] io::Error),
    #[error("malformed snapshot body: {0}")]
    Malformed(String),
    #[error("snapshot body format {0} is not one this build reads")]
    UnknownFormat(u32),
}

type Result<T> = std::result::Result<T, SnapshotBodyError>;

fn malformed(why: impl Into<String>) -> SnapshotBodyError {
    SnapshotBodyError::Malformed(why.into())
}

fn read_err(e: io::Error) -> SnapshotBodyError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        malformed("the body ends early")
    } else {
        SnapshotBodyError::Io(e)
    }
}

fn modality_tag(m: ModalityKind) -> u8 {
    match m {
        ModalityKind::Graph => 0,
        ModalityKind::Vector => 1,
        ModalityKind::Tensor => 2,
        ModalityKind::Semantic => 3,
    }
}

fn modality_of(tag: u8) -> Result<ModalityKind> {
    Ok(match tag {
        0 => ModalityKind::Graph,
        1 => ModalityKind::Vector,
        2 => ModalityKind::Tensor,
        3 => ModalityKind::Semantic,
        t => return Err(malformed(format!("unknown modality tag {t}"))),
    })
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// A name table: each name is written once, then referred to by its position.
#[derive(Default)]
struct Table<'s> {
    index: HashMap<&'s str, u64>,
}

impl<'s> Table<'s> {
    fn put(&mut self, buf: &mut Vec<u8>, name: &'s str) {
        match self.index.get(name) {
            Some(&k) => put_varint(buf, k + 1),
            None => {
                put_varint(buf, 0);
                put_bytes(buf, name.as_bytes());
                let k = self.index.len() as u64;
                self.index.insert(name, k);
            }
        }
    }
}

struct Encoder<'s, 'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    clients: Table<'s>,
    nodes: Table<'s>,
}

impl<'s> Encoder<'s, '_> {
    fn varint(&mut self, v: u64) {
        put_varint(&mut self.buf, v);
    }

    fn bytes(&mut self, b: &[u8]) {
        put_bytes(&mut self.buf, b);
    }

    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn client(&mut self, c: &'s ClientId) {
        self.clients.put(&mut self.buf, c.as_str());
    }

    fn node(&mut self, n: &'s NodeName) {
        self.nodes.put(&mut self.buf, n.as_str());
    }

    /// Called between records: hands a full block to the writer.
    fn record_done(&mut self) -> io::Result<()> {
        if self.buf.len() >= BLOCK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn outcome(&mut self, o: &Outcome) {
        match o {
            Outcome::EntityPut { version, index } => {
                self.raw(&[1]);
                self.varint(*version);
                self.varint(*index);
            }
            Outcome::EntityDeleted { version, index } => {
                self.raw(&[2]);
                self.varint(*version);
                self.varint(*index);
            }
            Outcome::GrantChanged { index } => {
                self.raw(&[3]);
                self.varint(*index);
            }
            other => {
                self.raw(&[0]);
                self.bytes(&encode(other));
            }
        }
    }
}

/// Writes `s` in format 2 to `out`, in blocks, never whole in memory.
pub(super) fn write(s: &RegistryState, out: &mut dyn Write) -> io::Result<()> {
    let mut e = Encoder {
        out,
        buf: Vec::with_capacity(BLOCK + (64 << 10)),
        clients: Table::default(),
        nodes: Table::default(),
    };
    e.bytes(&encode(&s.config));
    e.varint(s.applied_index);
    e.varint(s.clock_ms);

    e.varint(s.clients.len() as u64);
    for (id, c) in s.clients.iter() {
        e.client(id);
        e.raw(&c.public_key.0);
        e.raw(&[u8::from(c.revoked)]);
        e.varint(c.registered_index);
        e.record_done()?;
    }
    e.varint(s.windows.len() as u64);
    for (id, w) in s.windows.iter() {
        e.bytes(id.as_str().as_bytes());
        e.client(&w.client);
        e.varint(w.opened_at_ms);
        e.varint(w.expires_at_ms);
        e.raw(&w.client_dh.0);
        e.record_done()?;
    }
    e.varint(s.nodes.len() as u64);
    for (n, info) in s.nodes.iter() {
        e.node(n);
        e.bytes(info.cluster_addr.as_bytes());
        e.bytes(info.http_addr.as_bytes());
        e.record_done()?;
    }
    e.varint(s.entities.len() as u64);
    for (id, m) in s.entities.iter() {
        e.bytes(id.as_bytes());
        e.varint(m.version);
        e.varint(m.items.len() as u64);
        for (kind, item) in &m.items {
            e.raw(&[modality_tag(*kind)]);
            e.raw(&item.hash.0);
            e.varint(item.size);
        }
        e.varint(m.placement.len() as u64);
        for n in &m.placement {
            e.node(n);
        }
        e.client(&m.owner);
        e.varint(m.index);
        e.varint(m.grants.len() as u64);
        for (g, access) in &m.grants {
            e.client(g);
            e.raw(&[match access {
                Access::Read => 0,
                Access::Write => 1,
            }]);
        }
        e.record_done()?;
    }
    e.varint(s.retired.len() as u64);
    for (id, version) in s.retired.iter() {
        e.bytes(id.as_bytes());
        e.varint(*version);
        e.record_done()?;
    }
    e.varint(s.requests.len() as u64);
    for ((c, r), a) in s.requests.iter() {
        e.client(c);
        e.bytes(r.as_str().as_bytes());
        e.varint(a.at_ms);
        e.raw(&a.fingerprint.0);
        e.outcome(&a.outcome);
        e.record_done()?;
    }
    e.out.write_all(&e.buf)?;
    e.out.flush()
}

/// Reads the body through a buffer of its own: the decoder reads a few bytes at a time, and through
/// `dyn BufRead` every one of those reads was a call through a vtable (monomorphised here, they are
/// a bounds check and a copy).
const READ_BUFFER: usize = 64 << 10;

struct Decoder<R> {
    r: R,
    clients: Vec<ClientId>,
    nodes: Vec<NodeName>,
}

impl<R: BufRead> Decoder<R> {
    fn new(r: R) -> Self {
        Self {
            r,
            clients: Vec::new(),
            nodes: Vec::new(),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b).map_err(read_err)?;
        Ok(b[0])
    }

    fn array32(&mut self) -> Result<[u8; 32]> {
        let mut b = [0u8; 32];
        self.r.read_exact(&mut b).map_err(read_err)?;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            if i == 9 && b > 1 {
                return Err(malformed("a varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(malformed("a varint is not in its shortest form"));
                }
                return Ok(v);
            }
        }
        Err(malformed("a varint overflows 64 bits"))
    }

    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(malformed(format!("{t} is not a boolean"))),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.varint()?;
        if len <= SMALL {
            let n = len as usize;
            // Copied straight out of the buffer when it holds them all (the usual case).
            let buffered = self.r.fill_buf().map_err(read_err)?;
            if let Some(b) = buffered.get(..n) {
                let v = b.to_vec();
                self.r.consume(n);
                return Ok(v);
            }
            let mut v = vec![0u8; n];
            self.r.read_exact(&mut v).map_err(read_err)?;
            return Ok(v);
        }
        let mut v = Vec::new();
        (&mut self.r)
            .take(len)
            .read_to_end(&mut v)
            .map_err(read_err)?;
        if v.len() as u64 != len {
            return Err(malformed("the body ends early"));
        }
        Ok(v)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| malformed(format!("{what} is not UTF-8")))
    }

    fn client(&mut self) -> Result<ClientId> {
        match self.varint()? {
            0 => {
                let id = ClientId::new(self.string("a client id")?)
                    .map_err(|e| malformed(e.to_string()))?;
                self.clients.push(id.clone());
                Ok(id)
            }
            k => usize::try_from(k - 1)
                .ok()
                .and_then(|k| self.clients.get(k))
                .cloned()
                .ok_or_else(|| malformed(format!("client reference {k} names no client"))),
        }
    }

    fn node(&mut self) -> Result<NodeName> {
        match self.varint()? {
            0 => {
                let n = NodeName::new(self.string("a node name")?)
                    .map_err(|e| malformed(e.to_string()))?;
                self.nodes.push(n.clone());
                Ok(n)
            }
            k => usize::try_from(k - 1)
                .ok()
                .and_then(|k| self.nodes.get(k))
                .cloned()
                .ok_or_else(|| malformed(format!("node reference {k} names no node"))),
        }
    }

    fn entity_id(&mut self) -> Result<EntityId> {
        EntityId::new(self.string("an entity id")?).map_err(|e| malformed(e.to_string()))
    }

    fn cbor<T: serde::de::DeserializeOwned>(&mut self, what: &str) -> Result<T> {
        decode_exact(&self.bytes()?).map_err(|e| malformed(format!("{what}: {e}")))
    }

    fn outcome(&mut self) -> Result<Outcome> {
        Ok(match self.u8()? {
            1 => Outcome::EntityPut {
                version: self.varint()?,
                index: self.varint()?,
            },
            2 => Outcome::EntityDeleted {
                version: self.varint()?,
                index: self.varint()?,
            },
            3 => Outcome::GrantChanged {
                index: self.varint()?,
            },
            0 => self.cbor("a remembered outcome")?,
            t => return Err(malformed(format!("unknown outcome tag {t}"))),
        })
    }

    /// Nothing may follow the last record.
    fn end(&mut self) -> Result<()> {
        match self.r.fill_buf().map_err(read_err)? {
            [] => Ok(()),
            rest => Err(malformed(format!(
                "bytes after the registry state (at least {})",
                rest.len()
            ))),
        }
    }
}

/// The key of the record before, as bytes, so that each record's key is checked against it without
/// a descent of the map (which holds them as strings, or pairs of strings). These keys order as
/// their byte strings do, part by part, as a tuple orders field by field; a one-part key leaves
/// the second part empty.
#[derive(Default)]
struct LastKey {
    parts: [Vec<u8>; 2],
    seen: bool,
}

impl LastKey {
    /// Accepts `key` if it is greater than the one before (`what` names the map).
    fn advance(&mut self, key: [&[u8]; 2], what: &str) -> Result<()> {
        if self.seen && key <= [&self.parts[0][..], &self.parts[1][..]] {
            return Err(malformed(format!("{what} out of order or repeated")));
        }
        self.seen = true;
        for (last, part) in self.parts.iter_mut().zip(key) {
            last.clear();
            last.extend_from_slice(part);
        }
        Ok(())
    }
}

/// Reads a body of `format` ([`FORMAT_CBOR`] or [`FORMAT_COMPACT`]) to its end.
pub(super) fn read(format: u32, r: &mut dyn BufRead) -> Result<RegistryState> {
    match format {
        FORMAT_CBOR => {
            let s: RegistryState = ciborium::from_reader(&mut *r).map_err(|e| match e {
                ciborium::de::Error::Io(e) => read_err(e),
                other => malformed(other.to_string()),
            })?;
            Decoder::new(r).end()?;
            Ok(s)
        }
        FORMAT_COMPACT => read_compact(&mut Decoder::new(BufReader::with_capacity(READ_BUFFER, r))),
        other => Err(SnapshotBodyError::UnknownFormat(other)),
    }
}

/// Records handed to the thread that builds the two large maps.
enum Batch {
    Entities(Vec<(EntityId, EntityMeta)>),
    Requests(Vec<((ClientId, RequestId), AppliedRequest)>),
}

/// Records per [`Batch`], and batches parsed ahead of the builder.
const BATCH: usize = 4096;
const BATCHES_AHEAD: usize = 4;

/// The two large maps (entities, remembered requests), built on their own thread.
type LargeMaps = (
    OrdMap<EntityId, EntityMeta>,
    OrdMap<(ClientId, RequestId), AppliedRequest>,
);

/// Reads a compact body. Inserting into the persistent maps (a descent of a B-tree per record, its
/// key compares and node copies) costs about as much as parsing, so the entities and the requests
/// are inserted on a second thread while this one parses the records after them; on a machine with
/// a core to spare that halves the wall time. Everything that checks the bytes runs here.
fn read_compact<R: BufRead>(d: &mut Decoder<R>) -> Result<RegistryState> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
        let builder = std::thread::Builder::new()
            .name("verisim-snapshot-maps".into())
            .spawn_scoped(scope, move || build_large_maps(rx))
            .map_err(SnapshotBodyError::Io)?;
        let parsed = parse_compact(d, &tx);
        // The builder ends once its channel is closed and drained.
        drop(tx);
        let maps = builder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let mut s = parsed?;
        (s.entities, s.requests) = maps;
        Ok(s)
    })
}

fn build_large_maps(batches: std::sync::mpsc::Receiver<Batch>) -> LargeMaps {
    let (mut entities, mut requests) = (OrdMap::new(), OrdMap::new());
    for batch in batches {
        match batch {
            Batch::Entities(records) => insert_ascending(&mut entities, records),
            Batch::Requests(records) => insert_ascending(&mut requests, records),
        }
    }
    (entities, requests)
}

/// Inserts `records`, sorted by key and each greater than every key of `map`, so that the leaves
/// they fill end full rather than half full.
///
/// An `imbl` leaf has room for 64 entries whatever it holds, and a full leaf splits at its middle:
/// keys inserted in ascending order leave every leaf but the last with 32 entries, so a loaded
/// snapshot's maps took twice the memory their entries need (and a joining node faults in every
/// page of it). Inserting every other record first leaves such half-full leaves; the records in
/// between then go into their gaps (a record falls into the leaf whose first key precedes it),
/// filling each leaf to 64 without a split. The map is the same whatever the order: only its
/// layout changes (`the_loaded_maps_are_laid_out_in_full_leaves`).
fn insert_ascending<K: Ord + Clone, V: Clone>(map: &mut OrdMap<K, V>, records: Vec<(K, V)>) {
    let mut between = Vec::with_capacity(records.len() / 2);
    for (i, (k, v)) in records.into_iter().enumerate() {
        if i % 2 == 0 {
            map.insert(k, v);
        } else {
            between.push((k, v));
        }
    }
    for (k, v) in between {
        map.insert(k, v);
    }
}

/// Hands `batch` to the builder once full (`last`: whatever it holds).
fn send_batch<T>(
    tx: &std::sync::mpsc::SyncSender<Batch>,
    batch: &mut Vec<T>,
    last: bool,
    wrap: fn(Vec<T>) -> Batch,
) -> Result<()> {
    if batch.len() >= BATCH || (last && !batch.is_empty()) {
        let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
        tx.send(wrap(full)).map_err(|_| {
            SnapshotBodyError::Io(io::Error::other("the snapshot's map builder stopped"))
        })?;
    }
    Ok(())
}

/// Parses a compact body, checking every byte of it; the entities and requests go to `tx`, the
/// rest into the state returned.
fn parse_compact<R: BufRead>(
    d: &mut Decoder<R>,
    tx: &std::sync::mpsc::SyncSender<Batch>,
) -> Result<RegistryState> {
    let mut s = RegistryState {
        config: d.cbor("the registry config")?,
        applied_index: d.varint()?,
        clock_ms: d.varint()?,
        ..RegistryState::default()
    };
    let mut last = LastKey::default();
    for _ in 0..d.varint()? {
        let id = d.client()?;
        let rec = ClientRecord {
            public_key: PublicKey(d.array32()?),
            revoked: d.bool()?,
            registered_index: d.varint()?,
        };
        last.advance([id.as_bytes(), b""], "clients")?;
        s.clients.insert(id, rec);
    }
    let mut last = LastKey::default();
    for _ in 0..d.varint()? {
        let id = WindowId::new(d.string("a window id")?).map_err(|e| malformed(e.to_string()))?;
        let w = WindowRecord {
            client: d.client()?,
            opened_at_ms: d.varint()?,
            expires_at_ms: d.varint()?,
            client_dh: PublicKey(d.array32()?),
        };
        last.advance([id.as_str().as_bytes(), b""], "windows")?;
        s.window_expiry.insert((w.expires_at_ms, id.clone()), ());
        s.windows.insert(id, w);
    }
    let mut last = LastKey::default();
    for _ in 0..d.varint()? {
        let n = d.node()?;
        let info = NodeInfo {
            cluster_addr: d.string("a cluster address")?,
            http_addr: d.string("an HTTP address")?,
        };
        last.advance([n.as_bytes(), b""], "nodes")?;
        s.nodes.insert(n, info);
    }
    let mut last = LastKey::default();
    let mut batch = Vec::new();
    for _ in 0..d.varint()? {
        let id = d.entity_id()?;
        last.advance([id.as_bytes(), b""], "entities")?;
        batch.push((id, entity(d)?));
        send_batch(tx, &mut batch, false, Batch::Entities)?;
    }
    send_batch(tx, &mut batch, true, Batch::Entities)?;
    let mut last = LastKey::default();
    for _ in 0..d.varint()? {
        let id = d.entity_id()?;
        let version = d.varint()?;
        last.advance([id.as_bytes(), b""], "retired ids")?;
        s.retired.insert(id, version);
    }
    let mut last = LastKey::default();
    // The requests arrive ordered by (client, request id); their order by time is built from a
    // sorted list, so that its inserts too go to the right edge of the tree, not all over it.
    let mut by_time = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..d.varint()? {
        let client = d.client()?;
        let request =
            RequestId::new(d.string("a request id")?).map_err(|e| malformed(e.to_string()))?;
        let a = AppliedRequest {
            at_ms: d.varint()?,
            fingerprint: ContentHash(d.array32()?),
            outcome: d.outcome()?,
        };
        last.advance([client.as_bytes(), request.as_str().as_bytes()], "requests")?;
        by_time.push((a.at_ms, client.clone(), request.clone()));
        batch.push(((client, request), a));
        send_batch(tx, &mut batch, false, Batch::Requests)?;
    }
    send_batch(tx, &mut batch, true, Batch::Requests)?;
    d.end()?;
    by_time.sort_unstable();
    insert_ascending(
        &mut s.request_expiry,
        by_time.into_iter().map(|k| (k, ())).collect(),
    );
    Ok(s)
}

/// One entity's record after its id.
fn entity<R: BufRead>(d: &mut Decoder<R>) -> Result<EntityMeta> {
    let version = d.varint()?;
    let mut items = Items::default();
    let mut last: Option<ModalityKind> = None;
    for _ in 0..d.varint()? {
        let kind = modality_of(d.u8()?)?;
        let item = ItemMeta {
            hash: ContentHash(d.array32()?),
            size: d.varint()?,
        };
        if last.is_some_and(|last| kind <= last) {
            return Err(malformed("an entity's items out of order or repeated"));
        }
        last = Some(kind);
        items.insert(kind, item);
    }
    let mut placement = Vec::new();
    for _ in 0..d.varint()? {
        placement.push(d.node()?);
    }
    let owner = d.client()?;
    let index = d.varint()?;
    let mut grants = BTreeMap::new();
    for _ in 0..d.varint()? {
        let grantee = d.client()?;
        let access = match d.u8()? {
            0 => Access::Read,
            1 => Access::Write,
            t => return Err(malformed(format!("unknown access tag {t}"))),
        };
        if grants
            .last_key_value()
            .is_some_and(|(last, _)| &grantee <= last)
        {
            return Err(malformed("an entity's grants out of order or repeated"));
        }
        grants.insert(grantee, access);
    }
    Ok(EntityMeta {
        version,
        items,
        placement,
        owner,
        index,
        grants,
    })
}

#[cfg(test)]
#[path = "codec_layout_tests.rs"]
mod layout_tests;

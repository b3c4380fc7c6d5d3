//! The backup file: written as a stream, read back only if every check holds (see the module docs
//! of [`super`] for the layout).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use verisim_raft::Membership;
use verisim_stores::{ContentHash, EntityId, ExportedItem, ModalityKind};

use crate::registry::{RegistryState, decode_exact, encode};

const MAGIC: &[u8; 8] = b"VSBACKUP";
const END_MAGIC: &[u8; 8] = b"VSBACKEN";
/// The format written; readers refuse others.
pub const FORMAT: u32 = 1;

const KIND_HEADER: u8 = 1;
const KIND_REGISTRY: u8 = 2;
const KIND_ITEM: u8 = 3;
const KIND_ABORT: u8 = 4;
const KIND_TRAILER: u8 = 0xFF;

/// Frames larger than this are corruption (a header, an abort message).
const MAX_SMALL_FRAME: u64 = 1 << 20;
/// An item larger than this is corruption (far above any store limit).
const MAX_ITEM_FRAME: u64 = 1 << 32;
/// The trailer after its kind byte: items, entities, bytes, BLAKE3, end magic.
const TRAILER_LEN: usize = 8 + 8 + 8 + 32 + 8;

/// What a backup covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub format: u32,
    /// The node that served the backup.
    pub source_node: u64,
    /// The registry's applied index and term: the backup is the registry as of this entry.
    pub index: u64,
    pub term: u64,
    /// The source cluster's membership at `index` (CBOR `Membership`): informational, a restore
    /// makes a new cluster and never uses it.
    #[serde(with = "serde_bytes")]
    pub membership: Vec<u8>,
    /// Wall-clock creation time, ms since the Unix epoch.
    pub created_ms: u64,
    /// Entities in the registry.
    pub entities: u64,
    /// Length and BLAKE3 of the registry frame.
    pub registry_len: u64,
    #[serde(with = "serde_bytes")]
    pub registry_blake3: Vec<u8>,
}

impl BackupHeader {
    /// The source cluster's membership, if it decodes.
    pub fn source_membership(&self) -> Option<Membership> {
        decode_exact(&self.membership).ok()
    }
}

/// What a complete, checked backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub header: BackupHeader,
    pub entities: u64,
    pub items: u64,
    /// Every byte of the file, trailer included.
    pub bytes: u64,
    /// The trailer's BLAKE3, hex.
    pub blake3: String,
}

/// Why a backup could not be written, read or restored. [`BackupError::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Transient or environmental (a read, a write, a full disk).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The bytes are wrong: a marker, a length, a checksum, a frame out of place, a truncation.
    #[error("not a valid backup: {0}")]
    Corrupt(String),
    #[error("backup format {0}, this build reads format {FORMAT}")]
    UnknownFormat(u32),
    /// The node that served the backup failed while streaming it, and said why.
    #[error("the node aborted the backup: {0}")]
    Aborted(String),
    /// The node could not produce a consistent backup (a payload missing or changed).
    #[error("{0}")]
    Inconsistent(String),
    /// Where a restore was asked to write is not usable.
    #[error("{0}")]
    Target(String),
}

impl BackupError {
    /// A stable code per variant, for scripts and the CLI's JSON.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Io { .. } => "io",
            BackupError::Corrupt(_) => "backup_corrupt",
            BackupError::UnknownFormat(_) => "backup_unknown_format",
            BackupError::Aborted(_) => "backup_aborted",
            BackupError::Inconsistent(_) => "backup_inconsistent",
            BackupError::Target(_) => "restore_target",
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
        let context = context.into();
        move |source| BackupError::Io { context, source }
    }
}

fn corrupt(reason: impl Into<String>) -> BackupError {
    BackupError::Corrupt(reason.into())
}

/// Writes a backup as a stream: [`BackupWriter::new`] (magic and header), then
/// [`BackupWriter::registry`], any number of [`BackupWriter::item`], and [`BackupWriter::finish`]
/// (the trailer) or [`BackupWriter::abort`].
pub struct BackupWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
    items: u64,
    entities: u64,
    registry_written: bool,
}

impl<W: Write> BackupWriter<W> {
    /// Writes the magic, the format and the header. `registry` is the snapshot body the next call
    /// writes (its length and BLAKE3 go into the header).
    ///
    /// # Errors
    /// The writer's.
    pub fn new(inner: W, mut header: BackupHeader, registry: &[u8]) -> io::Result<Self> {
        header.format = FORMAT;
        header.registry_len = registry.len() as u64;
        header.registry_blake3 = blake3::hash(registry).as_bytes().to_vec();
        let entities = header.entities;
        let mut w = BackupWriter {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            items: 0,
            entities,
            registry_written: false,
        };
        w.put(MAGIC)?;
        w.put(&FORMAT.to_be_bytes())?;
        w.frame(KIND_HEADER, &encode(&header))?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn frame(&mut self, kind: u8, body: &[u8]) -> io::Result<()> {
        self.put(&[kind])?;
        self.put(&(body.len() as u64).to_be_bytes())?;
        self.put(body)
    }

    /// The registry snapshot body given to [`BackupWriter::new`].
    ///
    /// # Errors
    /// The writer's.
    pub fn registry(&mut self, registry: &[u8]) -> io::Result<()> {
        self.registry_written = true;
        self.frame(KIND_REGISTRY, registry)
    }

    /// One entity item.
    ///
    /// # Errors
    /// The writer's.
    pub fn item(&mut self, item: &ExportedItem) -> io::Result<()> {
        self.items += 1;
        self.frame(KIND_ITEM, &encode(item))
    }

    /// Ends the stream with the reason it cannot be completed: a reader refuses the file.
    ///
    /// # Errors
    /// The writer's.
    pub fn abort(mut self, reason: &str) -> io::Result<W> {
        self.frame(KIND_ABORT, reason.as_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Writes the trailer and returns the inner writer with the BLAKE3 of everything before it.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(mut self) -> io::Result<(W, [u8; 32])> {
        debug_assert!(self.registry_written, "the registry frame comes first");
        let hash = *self.hasher.finalize().as_bytes();
        let mut t = Vec::with_capacity(1 + TRAILER_LEN);
        t.push(KIND_TRAILER);
        t.extend_from_slice(&self.items.to_be_bytes());
        t.extend_from_slice(&self.entities.to_be_bytes());
        t.extend_from_slice(&self.bytes.to_be_bytes());
        t.extend_from_slice(&hash);
        t.extend_from_slice(END_MAGIC);
        self.inner.write_all(&t)?;
        self.inner.flush()?;
        Ok((self.inner, hash))
    }

    /// The inner writer (the streaming server drains a `Vec` between frames).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

/// Reads a backup back, checking as it goes: [`BackupReader::open`] (magic, format, header),
/// [`BackupReader::registry`], then [`BackupReader::next_item`] until `None`, which is only
/// answered once the trailer's counts and BLAKE3 hold. Nothing read is trusted before that: a
/// caller that acts on items as they come must undo its work when the end does not verify.
pub struct BackupReader<R: Read> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
    items: u64,
    header: BackupHeader,
    registry_read: bool,
    done: bool,
}

impl<R: Read> BackupReader<R> {
    /// Reads and checks the magic, the format and the header.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`], [`BackupError::UnknownFormat`], I/O.
    pub fn open(inner: R) -> Result<Self, BackupError> {
        let mut r = BackupReader {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            items: 0,
            header: BackupHeader {
                format: 0,
                source_node: 0,
                index: 0,
                term: 0,
                membership: Vec::new(),
                created_ms: 0,
                entities: 0,
                registry_len: 0,
                registry_blake3: Vec::new(),
            },
            registry_read: false,
            done: false,
        };
        let mut magic = [0u8; 8];
        r.exact(&mut magic, "the magic")?;
        if &magic != MAGIC {
            return Err(corrupt(
                "no backup magic at the start (not a VeriSim backup)",
            ));
        }
        let mut format = [0u8; 4];
        r.exact(&mut format, "the format")?;
        let format = u32::from_be_bytes(format);
        if format != FORMAT {
            return Err(BackupError::UnknownFormat(format));
        }
        let (kind, body) = r.frame(MAX_SMALL_FRAME)?;
        if kind != KIND_HEADER {
            return Err(corrupt(format!("frame {kind} where the header belongs")));
        }
        let header: BackupHeader =
            decode_exact(&body).map_err(|e| corrupt(format!("the header does not decode: {e}")))?;
        if header.format != FORMAT {
            return Err(BackupError::UnknownFormat(header.format));
        }
        if header.registry_blake3.len() != 32 {
            return Err(corrupt("the header's registry checksum is not 32 bytes"));
        }
        r.header = header;
        Ok(r)
    }

    pub fn header(&self) -> &BackupHeader {
        &self.header
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), BackupError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.hasher.update(buf);
                self.bytes += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(corrupt(format!(
                "truncated: the file ends inside {what}, after {} bytes",
                self.bytes
            ))),
            Err(e) => Err(BackupError::io(format!("reading {what}"))(e)),
        }
    }

    /// One frame's kind, and its body unless it is the trailer (whose bytes are not hashed).
    fn frame(&mut self, max: u64) -> Result<(u8, Vec<u8>), BackupError> {
        let mut kind = [0u8; 1];
        match self.inner.read_exact(&mut kind) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(corrupt(format!(
                    "truncated: no trailer after {} bytes",
                    self.bytes
                )));
            }
            Err(e) => return Err(BackupError::io("reading a frame")(e)),
        }
        if kind[0] == KIND_TRAILER {
            return Ok((KIND_TRAILER, Vec::new()));
        }
        self.hasher.update(&kind);
        self.bytes += 1;
        let mut len = [0u8; 8];
        self.exact(&mut len, "a frame length")?;
        let len = u64::from_be_bytes(len);
        if len > max {
            return Err(corrupt(format!(
                "a frame of kind {} claims {len} bytes (at most {max})",
                kind[0]
            )));
        }
        // Grows as bytes arrive: a corrupt length on a short file allocates no more than the file.
        let mut body = Vec::new();
        (&mut self.inner)
            .take(len)
            .read_to_end(&mut body)
            .map_err(BackupError::io("reading a frame"))?;
        if body.len() as u64 != len {
            return Err(corrupt(format!(
                "truncated: a frame of {len} bytes ends after {} (at byte {})",
                body.len(),
                self.bytes + body.len() as u64
            )));
        }
        self.hasher.update(&body);
        self.bytes += len;
        if kind[0] == KIND_ABORT {
            return Err(BackupError::Aborted(
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        Ok((kind[0], body))
    }

    /// The registry snapshot body, checked against the header.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`], I/O.
    pub fn registry(&mut self) -> Result<Vec<u8>, BackupError> {
        let (kind, body) = self.frame(self.header.registry_len)?;
        if kind != KIND_REGISTRY {
            return Err(corrupt(format!("frame {kind} where the registry belongs")));
        }
        if body.len() as u64 != self.header.registry_len
            || blake3::hash(&body).as_bytes()[..] != self.header.registry_blake3[..]
        {
            return Err(corrupt(
                "the registry does not match the header's length and checksum",
            ));
        }
        self.registry_read = true;
        Ok(body)
    }

    /// The next item (its content hash checked), or `None` once the trailer verified.
    ///
    /// # Errors
    /// [`BackupError::Corrupt`], [`BackupError::Aborted`], I/O.
    pub fn next_item(&mut self) -> Result<Option<ExportedItem>, BackupError> {
        if self.done {
            return Ok(None);
        }
        if !self.registry_read {
            return Err(corrupt("items read before the registry"));
        }
        let (kind, body) = self.frame(MAX_ITEM_FRAME)?;
        match kind {
            KIND_ITEM => {
                let item: ExportedItem = decode_exact(&body)
                    .map_err(|e| corrupt(format!("item {} does not decode: {e}", self.items)))?;
                let actual = ContentHash::of(item.modality.hash_domain(), &item.payload.0);
                if actual != item.hash {
                    return Err(corrupt(format!(
                        "the {:?} item of {} does not match its content hash",
                        item.modality, item.id
                    )));
                }
                self.items += 1;
                Ok(Some(item))
            }
            KIND_TRAILER => {
                self.trailer()?;
                self.done = true;
                Ok(None)
            }
            other => Err(corrupt(format!("frame {other} among the items"))),
        }
    }

    fn trailer(&mut self) -> Result<(), BackupError> {
        let mut t = [0u8; TRAILER_LEN];
        match self.inner.read_exact(&mut t) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(corrupt("truncated inside the trailer"));
            }
            Err(e) => return Err(BackupError::io("reading the trailer")(e)),
        }
        let u = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&t[at..at + 8]);
            u64::from_be_bytes(b)
        };
        if &t[56..64] != END_MAGIC {
            return Err(corrupt("no end marker after the trailer"));
        }
        let hash = *self.hasher.finalize().as_bytes();
        if t[24..56] != hash {
            return Err(corrupt(
                "the file's BLAKE3 does not match its trailer (bytes changed)",
            ));
        }
        if u(16) != self.bytes {
            return Err(corrupt(format!(
                "the trailer counts {} bytes, the file has {}",
                u(16),
                self.bytes
            )));
        }
        if u(0) != self.items || u(8) != self.header.entities {
            return Err(corrupt(format!(
                "the trailer counts {} items and {} entities, the file has {} items and the \
                 header {} entities",
                u(0),
                u(8),
                self.items,
                self.header.entities
            )));
        }
        let mut extra = [0u8; 1];
        match self.inner.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => return Err(corrupt("bytes after the trailer")),
            Err(e) => return Err(BackupError::io("reading after the trailer")(e)),
        }
        self.bytes += 1 + TRAILER_LEN as u64;
        Ok(())
    }

    /// The trailer's BLAKE3 once verified (hex).
    fn blake3_hex(&self) -> String {
        hex::encode(self.hasher.finalize().as_bytes())
    }
}

/// Checks items against the registry they belong to: each is one the registry records, with the
/// hash it records, and none comes twice; [`Expect::finish`] checks none is missing.
pub(crate) struct Expect {
    seen: BTreeSet<(EntityId, ModalityKind)>,
    expected: u64,
}

impl Expect {
    pub(crate) fn new(state: &RegistryState) -> Self {
        Expect {
            seen: BTreeSet::new(),
            expected: state.entities().map(|(_, m)| m.items.len() as u64).sum(),
        }
    }

    pub(crate) fn check(
        &mut self,
        state: &RegistryState,
        item: &ExportedItem,
    ) -> Result<(), BackupError> {
        let meta = state.entity(&item.id).ok_or_else(|| {
            corrupt(format!(
                "an item of {}, which the registry does not hold",
                item.id
            ))
        })?;
        let recorded = meta.items.get(&item.modality).ok_or_else(|| {
            corrupt(format!(
                "a {:?} item of {}, which the registry does not record",
                item.modality, item.id
            ))
        })?;
        if recorded.hash != item.hash {
            return Err(corrupt(format!(
                "the {:?} item of {} is not the content the registry records",
                item.modality, item.id
            )));
        }
        if !self.seen.insert((item.id.clone(), item.modality)) {
            return Err(corrupt(format!(
                "the {:?} item of {} comes twice",
                item.modality, item.id
            )));
        }
        Ok(())
    }

    pub(crate) fn finish(&self) -> Result<(), BackupError> {
        if self.seen.len() as u64 != self.expected {
            return Err(corrupt(format!(
                "the registry records {} items, the file holds {}",
                self.expected,
                self.seen.len()
            )));
        }
        Ok(())
    }
}

/// Decodes a backup's registry body.
pub(crate) fn decode_registry(body: &[u8]) -> Result<RegistryState, BackupError> {
    RegistryState::from_cbor(body)
        .map_err(|e| corrupt(format!("the registry does not decode: {e}")))
}

/// Reads a whole backup from `input` and checks everything: the frames, every item's content hash
/// and the registry's record of it, that no item is missing, the trailer's counts and BLAKE3.
///
/// # Errors
/// Any [`BackupError`].
pub fn verify_reader(input: impl Read) -> Result<BackupSummary, BackupError> {
    let mut r = BackupReader::open(input)?;
    let state = decode_registry(&r.registry()?)?;
    if state.entity_count() as u64 != r.header().entities {
        return Err(corrupt(format!(
            "the header counts {} entities, the registry holds {}",
            r.header().entities,
            state.entity_count()
        )));
    }
    let mut expect = Expect::new(&state);
    while let Some(item) = r.next_item()? {
        expect.check(&state, &item)?;
    }
    expect.finish()?;
    Ok(BackupSummary {
        header: r.header().clone(),
        entities: state.entity_count() as u64,
        items: r.items,
        bytes: r.bytes(),
        blake3: r.blake3_hex(),
    })
}

/// [`verify_reader`] on a file.
///
/// # Errors
/// Any [`BackupError`].
pub fn verify_file(path: &Path) -> Result<BackupSummary, BackupError> {
    let file = std::fs::File::open(path)
        .map_err(BackupError::io(format!("opening {}", path.display())))?;
    verify_reader(io::BufReader::with_capacity(1 << 20, file))
}

#[cfg(test)]
mod tests;

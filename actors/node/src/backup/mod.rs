//! Backups: one file holding a registry snapshot consistent at one applied index together with
//! every store payload it names, checksummed; what `GET /admin/backup` streams, what
//! `verisim backup verify` checks, and what `verisim restore` builds a new cluster's data
//! directory from (docs/operations.md, "Backup and restore").
//!
//! ```text
//! "VSBACKUP"  format: u32 BE
//! frame*      kind: u8  len: u64 BE  bytes
//!               1 HEADER    CBOR BackupHeader (first, once)
//!               2 REGISTRY  the registry snapshot body: RegistryState CBOR (second, once)
//!               3 ITEM      CBOR ExportedItem {modality, id, hash, payload}, one per entity item
//!               4 ABORT     UTF-8: the node failed while streaming; the file is refused
//! trailer     0xFF  items: u64 BE  entities: u64 BE  bytes: u64 BE  BLAKE3: 32 B  "VSBACKEN"
//! ```
//!
//! The trailer's BLAKE3 covers every byte before it (`bytes` of them). Each frame is checked as it
//! is read as well: the registry against the header's length and BLAKE3, each item against its
//! content hash and against the hash the registry records for it.

pub mod format;
pub mod restore;
pub mod stream;

pub use format::{
    BackupError, BackupHeader, BackupReader, BackupSummary, BackupWriter, FORMAT, verify_file,
};
pub use restore::{RestoreReport, RestoreTarget, restore};

//! Snapshot files: the on-disk format and the directory that keeps them.
//!
//! A snapshot file is the registry state at `last_included_index` as a CBOR body, followed by a versioned
//! CBOR header that describes and checksums it. The header is written after the body so a large body
//! can be streamed to disk and hashed as it goes; a fixed-size trailer locates the header.
//!
//! ```text
//! "VSNAP\0v1"  body (CBOR, body_len bytes)  header (CBOR)  header_len: u32 BE  BLAKE3(header): 32 B  "VSNAPEND"
//! ```
//!
//! Files are written to a temporary name, fsynced, renamed and the directory fsynced, so a crash leaves
//! either the old set of snapshots or the new one plus a temporary file that the next start removes.

mod dir;
mod file;

pub use dir::{Expected, OpenReport, Quarantined, SnapshotDir, SnapshotInfo};
pub use file::{
    FORMAT, SnapshotError, SnapshotHeader, read_chunk, read_header, read_snapshot, verify_snapshot,
    write_snapshot,
};

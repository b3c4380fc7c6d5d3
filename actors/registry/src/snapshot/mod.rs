//! Snapshot files: the on-disk format and the directory that keeps them.
//!
//! A snapshot file is the registry state at `last_included_index` as a body, followed by a versioned
//! CBOR header that describes and checksums it. The header is written after the body so a large body
//! can be streamed to disk and hashed as it goes; a fixed-size trailer locates the header.
//!
//! ```text
//! "VSNAP\0v1"  body (body_len bytes)  header (CBOR)  header_len: u32 BE  BLAKE3(header): 32 B  "VSNAPEND"
//! ```
//!
//! The header's `format` names the body's encoding: 1, the registry state as CBOR (written until
//! 2026-12-07, still read); 2, the compact encoding of `registry::RegistryState::write_snapshot_body`
//! (written now). Bodies are written and read as streams, never whole in memory.
//!
//! Files are written to a temporary name, fsynced, renamed and the directory fsynced, so a crash leaves
//! either the old set of snapshots or the new one plus a temporary file that the next start removes.

mod dir;
mod file;

use std::path::Path;

use crate::{RegistryState, SnapshotBodyError};

pub use dir::{Expected, OpenReport, Quarantined, SnapshotDir, SnapshotInfo};
pub use file::{
    BodyError, FORMAT, READ_FORMATS, SnapshotError, SnapshotHeader, read_chunk, read_header,
    read_snapshot, read_snapshot_with, verify_snapshot, write_snapshot, write_snapshot_as,
};

/// Reads a registry snapshot of any format this build reads: checks every checksum and decodes the
/// body as it streams from disk. A body that does not decode is corruption; a failing disk is not.
pub fn read_registry(path: &Path) -> Result<(SnapshotHeader, RegistryState), SnapshotError> {
    read_snapshot_with(path, |header, body| {
        RegistryState::read_snapshot_body(header.format, body).map_err(|e| match e {
            SnapshotBodyError::Io(e) => BodyError::Io(e),
            other => BodyError::Malformed(other.to_string()),
        })
    })
}

#[cfg(test)]
mod tests;

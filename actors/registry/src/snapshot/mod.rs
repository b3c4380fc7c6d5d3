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

/// Checks and decodes a fully received registry snapshot (`partial`, still under its transfer's
/// name) in one pass: every checksum, the body decoded as it streams, and the file against what the
/// leader announced (`expect`); the file is fsynced while the body decodes. It touches nothing but
/// that file, so it can run off the thread that owns the directory;
/// [`SnapshotDir::place_received`] then moves it into place. A file whose bytes are wrong is
/// deleted (the leader sends it again); after an I/O error it stays for the caller to remove.
pub fn read_received_registry(
    partial: &Path,
    expect: &Expected,
) -> Result<(SnapshotHeader, RegistryState), SnapshotError> {
    let (read, synced) = std::thread::scope(|s| {
        let sync = s.spawn(|| {
            std::fs::File::open(partial)
                .and_then(|f| f.sync_all())
                .map_err(file::io_err(partial))
        });
        let read = read_registry(partial).and_then(|(header, state)| {
            let size = std::fs::metadata(partial)
                .map_err(file::io_err(partial))?
                .len();
            expect.check(partial, &header, size)?;
            Ok((header, state))
        });
        let synced = sync.join().unwrap_or_else(|_| {
            Err(SnapshotError::Io {
                path: partial.to_owned(),
                source: std::io::Error::other("the fsync thread panicked"),
            })
        });
        (read, synced)
    });
    match read {
        Err(e) => {
            if e.is_corruption() {
                let _ = std::fs::remove_file(partial);
            }
            Err(e)
        }
        Ok(loaded) => synced.map(|()| loaded),
    }
}

#[cfg(test)]
mod tests;

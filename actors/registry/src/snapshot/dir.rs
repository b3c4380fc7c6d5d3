//! The snapshot directory: names, start-up cleaning, choosing the newest valid snapshot, pruning.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::file::{self, SnapshotError, SnapshotHeader, io_err};

/// A snapshot file on disk and its (checked) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub header: SnapshotHeader,
}

/// What a received snapshot must be: the leader's announcement of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub index: u64,
    pub term: u64,
    /// The file's size in bytes.
    pub size: u64,
    /// Derived from the body's hash (see [`Expected::id_of`]).
    pub id: u64,
}

impl Expected {
    /// A snapshot's id: the first 8 bytes of its body hash (never 0, which means "no snapshot").
    pub fn id_of(body_blake3: &[u8; 32]) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body_blake3[..8]);
        u64::from_be_bytes(b).max(1)
    }

    /// A file whose checksums hold but that is not the announced snapshot is refused as corrupt: it
    /// would install another state than the one the leader's log position stands for.
    pub(crate) fn check(
        &self,
        path: &Path,
        h: &SnapshotHeader,
        size: u64,
    ) -> Result<(), SnapshotError> {
        let wrong = |what: String| SnapshotError::Corrupt {
            path: path.to_owned(),
            reason: format!("not the snapshot the leader announced: {what}"),
        };
        if (h.last_included_index, h.last_included_term) != (self.index, self.term) {
            return Err(wrong(format!(
                "covers ({}, {}) instead of ({}, {})",
                h.last_included_index, h.last_included_term, self.index, self.term
            )));
        }
        if size != self.size {
            return Err(wrong(format!("{size} bytes instead of {}", self.size)));
        }
        if Self::id_of(&h.body_blake3) != self.id {
            return Err(wrong("body hash does not match its id".into()));
        }
        Ok(())
    }
}

/// The directory holding a node's snapshots.
///
/// File names: `snap-<index>-<term>.vsnap` (zero-padded, so names sort by index), `*.tmp` for a write in
/// progress, `recv-<snapshot id>.partial` for a snapshot being received from the leader, `*.corrupt`
/// for files that failed their checksums (kept for inspection, never loaded).
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
    keep: usize,
}

/// What [`SnapshotDir::open`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Temporary and partial files removed.
    pub removed: Vec<PathBuf>,
    /// Snapshots whose bytes are wrong, renamed to `*.corrupt`.
    pub quarantined: Vec<Quarantined>,
    /// Snapshots that could not be read (an I/O error, not their bytes): left in place, and the
    /// cause, so whoever needs one of them can report it.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// A snapshot set aside because its checks fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub from: PathBuf,
    pub to: PathBuf,
    /// Why: the checksum, marker, length or format that failed.
    pub cause: String,
}

impl SnapshotDir {
    /// Opens `dir` (creating it), removes leftovers of interrupted writes and transfers, and quarantines
    /// snapshots whose bytes fail their checks. A snapshot that cannot be read (an I/O error) stays
    /// where it is: it is listed in the report and tried again at the next open.
    /// `keep` (at least 1) is how many valid snapshots pruning leaves.
    pub fn open(dir: impl Into<PathBuf>, keep: usize) -> Result<(Self, OpenReport), SnapshotError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let this = Self {
            dir,
            keep: keep.max(1),
        };
        let mut report = OpenReport::default();
        for entry in fs::read_dir(&this.dir).map_err(io_err(&this.dir))? {
            let path = entry.map_err(io_err(&this.dir))?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp" | "partial") => {
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    report.removed.push(path);
                }
                Some("vsnap") => match file::verify_snapshot(&path) {
                    Ok(_) => {}
                    Err(e) if e.is_corruption() => {
                        report.quarantined.push(this.quarantine(&path, &e)?);
                    }
                    Err(e) => {
                        warn!(error = %e, "a snapshot cannot be read (I/O); left in place");
                        report.unreadable.push((path, e.to_string()));
                    }
                },
                _ => {}
            }
        }
        if !report.removed.is_empty() || !report.quarantined.is_empty() {
            file::sync_dir(&this.dir)?;
            info!(
                removed = report.removed.len(),
                quarantined = report.quarantined.len(),
                "cleaned the snapshot directory"
            );
        }
        Ok((this, report))
    }

    /// Renames a snapshot whose bytes are wrong to `*.corrupt` (kept for inspection, never loaded).
    /// Only for corruption: a transient I/O error must not cost a good file.
    pub fn quarantine(
        &self,
        path: &Path,
        cause: &SnapshotError,
    ) -> Result<Quarantined, SnapshotError> {
        debug_assert!(cause.is_corruption());
        let to = path.with_extension("corrupt");
        warn!(file = %path.display(), to = %to.display(), error = %cause, "quarantining a corrupt snapshot");
        fs::rename(path, &to).map_err(io_err(path))?;
        Ok(Quarantined {
            from: path.to_owned(),
            to,
            cause: cause.to_string(),
        })
    }

    /// Removes what is left of snapshot transfers (after one was refused).
    pub fn remove_partials(&self) -> Result<(), SnapshotError> {
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("partial") {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    /// A handle on a directory another handle opened (and cleaned): for the snapshotter, which writes
    /// into the directory the consensus actor owns.
    pub fn at(dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file name of the snapshot at (index, term).
    pub fn path_for(&self, index: u64, term: u64) -> PathBuf {
        self.dir.join(format!("snap-{index:020}-{term:020}.vsnap"))
    }

    /// Where a snapshot being received from the leader is assembled; chunks name it by id only.
    pub fn partial_path_for(&self, snapshot_id: u64) -> PathBuf {
        self.dir.join(format!("recv-{snapshot_id:016x}.partial"))
    }

    /// Writes one chunk of a snapshot being received at `offset` of its partial file. Not fsynced:
    /// a partial transfer never survives a restart ([`SnapshotDir::open`] removes `*.partial`, and
    /// the restarted node asks for the transfer from offset 0), and the complete file is fsynced by
    /// [`SnapshotDir::install_received`] before it is installed. Returns the partial file's path.
    pub fn write_chunk(&self, snapshot_id: u64, offset: u64, data: &[u8]) -> io::Result<PathBuf> {
        use std::io::{Seek, SeekFrom};
        let path = self.partial_path_for(snapshot_id);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)?;
        Ok(path)
    }

    /// The valid snapshots, oldest first. Headers are checked; bodies were checked at open or write.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("vsnap") {
                continue;
            }
            match file::read_header(&path) {
                Ok(header) => out.push(SnapshotInfo { path, header }),
                Err(e) => warn!(error = %e, "skipping an unreadable snapshot"),
            }
        }
        out.sort_by_key(|s| (s.header.last_included_index, s.header.last_included_term));
        Ok(out)
    }

    /// The newest snapshot whose every checksum matches, if any.
    pub fn latest(&self) -> Result<Option<SnapshotInfo>, SnapshotError> {
        for info in self.list()?.into_iter().rev() {
            match file::verify_snapshot(&info.path) {
                Ok(_) => return Ok(Some(info)),
                Err(e) => {
                    warn!(error = %e, "newest snapshot fails its checks; trying an older one")
                }
            }
        }
        Ok(None)
    }

    /// Writes a new snapshot atomically. Older snapshots stay until [`SnapshotDir::prune`]: the caller
    /// prunes only after the log store has recorded the new one, so a crash in between still finds the
    /// snapshot the log starts after.
    pub fn write(
        &self,
        index: u64,
        term: u64,
        membership: Vec<u8>,
        created_ms: u64,
        write_body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.path_for(index, term);
        let header = file::write_snapshot(&path, index, term, membership, created_ms, write_body)?;

        Ok(SnapshotInfo { path, header })
    }

    /// Checks a fully received snapshot against what the leader announced (`expect`) and moves it
    /// into place, atomically. Like [`SnapshotDir::write`] it leaves pruning to the caller. A
    /// transfer whose bytes are wrong is deleted (there is nothing to keep: the leader sends it
    /// again); after an I/O error the partial file stays for the caller to retry or remove.
    pub fn install_received(
        &self,
        partial: &Path,
        expect: &Expected,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let checked = file::verify_snapshot(partial).and_then(|header| {
            let size = fs::metadata(partial).map_err(io_err(partial))?.len();
            expect.check(partial, &header, size)?;
            Ok(header)
        });
        let header = match checked {
            Ok(h) => h,
            Err(e) => {
                if e.is_corruption() {
                    let _ = fs::remove_file(partial);
                }
                return Err(e);
            }
        };
        fs::File::open(partial)
            .and_then(|f| f.sync_all())
            .map_err(io_err(partial))?;
        self.place_received(partial, header)
    }

    /// Moves a received snapshot that was checked and fsynced (see
    /// [`super::read_received_registry`]) into place, atomically: renamed, then the directory
    /// fsynced. Like [`SnapshotDir::write`] it leaves pruning to the caller.
    pub fn place_received(
        &self,
        partial: &Path,
        header: SnapshotHeader,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let path = self.path_for(header.last_included_index, header.last_included_term);
        fs::rename(partial, &path).map_err(io_err(partial))?;
        file::sync_dir(&self.dir)?;
        Ok(SnapshotInfo { path, header })
    }

    /// Removes all but the `keep` newest valid snapshots.
    pub fn prune(&self) -> Result<(), SnapshotError> {
        let all = self.list()?;
        if all.len() <= self.keep {
            return Ok(());
        }
        let stale = all.len() - self.keep;
        for info in &all[..stale] {
            fs::remove_file(&info.path).map_err(io_err(&info.path))?;
        }
        file::sync_dir(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(d: &SnapshotDir, index: u64, body: &[u8]) -> SnapshotInfo {
        d.write(index, 1, vec![], 0, |w| w.write_all(body)).unwrap()
    }

    #[test]
    fn keeps_the_newest_and_prunes_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, _) = SnapshotDir::open(tmp.path(), 2).unwrap();
        for i in 1..=5 {
            snap(&d, i * 10, b"body");
        }
        assert_eq!(d.list().unwrap().len(), 5, "writing never prunes by itself");
        d.prune().unwrap();
        let idx: Vec<u64> = d
            .list()
            .unwrap()
            .iter()
            .map(|s| s.header.last_included_index)
            .collect();
        assert_eq!(idx, vec![40, 50]);
        assert_eq!(d.latest().unwrap().unwrap().header.last_included_index, 50);
    }

    #[test]
    fn open_removes_partials_and_quarantines_corrupt_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, _) = SnapshotDir::open(tmp.path(), 3).unwrap();
        snap(&d, 10, b"old but good");
        let newest = snap(&d, 20, b"newest");
        fs::write(d.path_for(30, 2).with_extension("tmp"), b"half written").unwrap();
        fs::write(d.partial_path_for(40), b"half received").unwrap();
        let mut bytes = fs::read(&newest.path).unwrap();
        bytes[10] ^= 0xff; // a flipped body byte
        fs::write(&newest.path, bytes).unwrap();

        let (d, report) = SnapshotDir::open(tmp.path(), 3).unwrap();
        assert_eq!(report.removed.len(), 2);
        assert_eq!(report.quarantined.len(), 1);
        assert_eq!(report.quarantined[0].from, newest.path);
        assert_eq!(
            report.quarantined[0].to,
            newest.path.with_extension("corrupt")
        );
        assert!(
            report.quarantined[0].cause.contains("checksum"),
            "{:?}",
            report.quarantined[0]
        );
        let latest = d.latest().unwrap().unwrap();
        assert_eq!(
            latest.header.last_included_index, 10,
            "the corrupt newest one is never loaded"
        );
    }

    #[test]
    fn a_corrupted_newest_snapshot_found_later_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, _) = SnapshotDir::open(tmp.path(), 3).unwrap();
        snap(&d, 10, b"ten");
        let newest = snap(&d, 20, b"twenty");
        let mut bytes = fs::read(&newest.path).unwrap();
        bytes[9] ^= 1;
        fs::write(&newest.path, bytes).unwrap();
        assert_eq!(d.latest().unwrap().unwrap().header.last_included_index, 10);
    }

    fn expected(info: &SnapshotInfo) -> Expected {
        Expected {
            index: info.header.last_included_index,
            term: info.header.last_included_term,
            size: fs::metadata(&info.path).unwrap().len(),
            id: Expected::id_of(&info.header.body_blake3),
        }
    }

    #[test]
    fn received_snapshots_are_checked_before_install() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (a, _) = SnapshotDir::open(src.path(), 1).unwrap();
        let (b, _) = SnapshotDir::open(dst.path(), 1).unwrap();
        let sent = snap(&a, 99, b"state");
        let expect = expected(&sent);
        let partial = b.partial_path_for(99);
        let bytes = fs::read(&sent.path).unwrap();
        fs::write(&partial, &bytes[..bytes.len() - 3]).unwrap();
        let e = b.install_received(&partial, &expect).unwrap_err();
        assert!(e.is_corruption(), "an incomplete transfer is refused: {e}");
        assert!(!partial.exists(), "and discarded");
        fs::write(&partial, &bytes).unwrap();
        let got = b.install_received(&partial, &expect).unwrap();
        assert_eq!(got.header, sent.header);
        assert!(!partial.exists());
        assert_eq!(b.latest().unwrap().unwrap().header.last_included_index, 99);
    }

    #[test]
    fn a_valid_file_that_is_not_the_announced_snapshot_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (a, _) = SnapshotDir::open(src.path(), 3).unwrap();
        let (b, _) = SnapshotDir::open(dst.path(), 1).unwrap();
        let announced = snap(&a, 50, b"the real state");
        let other = snap(&a, 60, b"another state");
        let partial = b.partial_path_for(7);
        for (what, expect) in [
            ("other index", expected(&announced)),
            (
                "other size",
                Expected {
                    size: 1,
                    ..expected(&other)
                },
            ),
            (
                "other id",
                Expected {
                    id: 12345,
                    ..expected(&other)
                },
            ),
        ] {
            fs::copy(&other.path, &partial).unwrap();
            let e = b.install_received(&partial, &expect).unwrap_err();
            assert!(e.is_corruption(), "{what}: {e}");
            assert!(!partial.exists(), "{what}: discarded");
            assert!(b.list().unwrap().is_empty(), "{what}: nothing installed");
        }
    }

    #[test]
    fn an_unreadable_snapshot_is_reported_and_left_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let (d, _) = SnapshotDir::open(tmp.path(), 3).unwrap();
        snap(&d, 10, b"good");
        // A snapshot name that fails to open (ENOENT through a dangling link): an I/O error, which
        // says nothing about any snapshot's bytes.
        let dangling = d.path_for(20, 1);
        std::os::unix::fs::symlink(tmp.path().join("gone"), &dangling).unwrap();

        let (d, report) = SnapshotDir::open(tmp.path(), 3).unwrap();
        assert!(report.quarantined.is_empty(), "{report:?}");
        assert_eq!(report.unreadable.len(), 1, "{report:?}");
        assert_eq!(report.unreadable[0].0, dangling);
        assert!(fs::symlink_metadata(&dangling).is_ok(), "left in place");
        assert!(!dangling.with_extension("corrupt").exists());
        assert_eq!(d.latest().unwrap().unwrap().header.last_included_index, 10);
    }
}

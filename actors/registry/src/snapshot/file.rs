//! One snapshot file: write it atomically, read it back only if every checksum matches.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use verisim_vocab::cbor::CborError;

const MAGIC: &[u8; 8] = b"VSNAP\0v1";
const END_MAGIC: &[u8; 8] = b"VSNAPEND";
/// Format version written into every header. It names the body's encoding: 1 is the registry state
/// as CBOR (written until 2026-12-07), 2 the compact registry encoding (`registry::RegistryState::
/// write_snapshot_body`). The container around the body is the same for both.
pub const FORMAT: u32 = 2;
/// The formats this build reads; readers refuse any other.
pub const READ_FORMATS: [u32; 2] = [1, 2];
/// header_len (4) + header hash (32) + end magic (8).
const TRAILER_LEN: u64 = 4 + 32 + 8;
/// Headers are small; anything larger is corruption.
const MAX_HEADER_LEN: u32 = 1 << 20;

/// What a snapshot covers, and the checksum of its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub format: u32,
    pub last_included_index: u64,
    pub last_included_term: u64,
    /// The cluster configuration at `last_included_index`, CBOR-encoded by the consensus layer.
    #[serde(with = "serde_bytes_vec")]
    pub membership: Vec<u8>,
    /// Wall-clock creation time, milliseconds since the Unix epoch (informational).
    pub created_ms: u64,
    pub body_len: u64,
    /// BLAKE3 of the body.
    #[serde(with = "serde_bytes_array")]
    pub body_blake3: [u8; 32],
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Transient or environmental: the file is left in place.
    #[error("snapshot I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes are wrong: a checksum, marker, length or header fails.
    #[error("{path} is not a snapshot file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} has snapshot format {found}, this build reads formats {READ_FORMATS:?}")]
    UnknownFormat { path: PathBuf, found: u32 },
}

impl SnapshotError {
    /// Whether the file itself is bad (a checksum, marker, length or header that does not hold, or a
    /// format this build does not read): rereading it gives the same answer, so it may be quarantined.
    /// Anything else is an I/O failure (EIO, ENOSPC, EMFILE, a permission, an interrupted call...) that
    /// says nothing about the bytes: the file stays where it is and the operation is retried.
    pub fn is_corruption(&self) -> bool {
        match self {
            SnapshotError::Corrupt { .. } | SnapshotError::UnknownFormat { .. } => true,
            SnapshotError::Io { .. } => false,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SnapshotError::Io { path, .. }
            | SnapshotError::Corrupt { path, .. }
            | SnapshotError::UnknownFormat { path, .. } => path,
        }
    }
}

/// Wraps an I/O error with the path it happened on.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot to `path` atomically: the body is produced by `write_body` into a temporary file
/// next to `path`, the header follows, the file is fsynced and renamed, and the directory fsynced.
/// Returns the header written. On error the temporary file is removed.
pub fn write_snapshot(
    path: &Path,
    last_included_index: u64,
    last_included_term: u64,
    membership: Vec<u8>,
    created_ms: u64,
    write_body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<SnapshotHeader, SnapshotError> {
    write_snapshot_as(
        FORMAT,
        path,
        last_included_index,
        last_included_term,
        membership,
        created_ms,
        write_body,
    )
}

/// [`write_snapshot`] with the header naming `format`: for tests and benchmarks that write an
/// older format (the body must then be in that format).
pub fn write_snapshot_as(
    format: u32,
    path: &Path,
    last_included_index: u64,
    last_included_term: u64,
    membership: Vec<u8>,
    created_ms: u64,
    write_body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<SnapshotHeader, SnapshotError> {
    let tmp = path.with_extension("tmp");
    let result = write_tmp(
        format,
        &tmp,
        last_included_index,
        last_included_term,
        membership,
        created_ms,
        write_body,
    )
    .and_then(|header| {
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(parent_of(path))?;
        Ok(header)
    });
    if result.is_err() {
        // Best effort: the next start removes leftovers too.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_tmp(
    format: u32,
    tmp: &Path,
    last_included_index: u64,
    last_included_term: u64,
    membership: Vec<u8>,
    created_ms: u64,
    write_body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<SnapshotHeader, SnapshotError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC).map_err(io_err(tmp))?;
    let mut body = Hashing {
        inner: &mut out,
        hasher: blake3::Hasher::new(),
        len: 0,
    };
    write_body(&mut body).map_err(io_err(tmp))?;
    let header = SnapshotHeader {
        format,
        last_included_index,
        last_included_term,
        membership,
        created_ms,
        body_len: body.len,
        body_blake3: *body.hasher.finalize().as_bytes(),
    };
    let mut header_bytes = Vec::new();
    ciborium::into_writer(&header, &mut header_bytes)
        .map_err(|e| corrupt(tmp, format!("encoding the header: {e}")))?;
    let header_len = u32::try_from(header_bytes.len())
        .ok()
        .filter(|&n| n <= MAX_HEADER_LEN)
        .ok_or_else(|| corrupt(tmp, "header larger than 1 MiB"))?;
    out.write_all(&header_bytes).map_err(io_err(tmp))?;
    out.write_all(&header_len.to_be_bytes())
        .map_err(io_err(tmp))?;
    out.write_all(blake3::hash(&header_bytes).as_bytes())
        .map_err(io_err(tmp))?;
    out.write_all(END_MAGIC).map_err(io_err(tmp))?;
    let file = out.into_inner().map_err(|e| io_err(tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(tmp))?;
    Ok(header)
}

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, so a rename or removal in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// What the checks read from: a file, or (in tests) a source that fails on purpose.
pub(crate) trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

/// Reads and checks the header (magic, trailer, header checksum, format, lengths) without reading the body.
pub fn read_header(path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let file_len = f.metadata().map_err(io_err(path))?.len();
    header_from(path, &mut f, file_len)
}

fn header_from(
    path: &Path,
    f: &mut dyn Source,
    file_len: u64,
) -> Result<SnapshotHeader, SnapshotError> {
    if file_len < MAGIC.len() as u64 + TRAILER_LEN {
        return Err(corrupt(path, format!("only {file_len} bytes long")));
    }
    f.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).map_err(io_err(path))?;
    if &magic != MAGIC {
        return Err(corrupt(path, "bad magic"));
    }
    f.seek(SeekFrom::Start(file_len - TRAILER_LEN))
        .map_err(io_err(path))?;
    let mut trailer = [0u8; TRAILER_LEN as usize];
    f.read_exact(&mut trailer).map_err(io_err(path))?;
    if &trailer[36..] != END_MAGIC {
        return Err(corrupt(path, "bad end marker (a partial write?)"));
    }
    let header_len = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if header_len > MAX_HEADER_LEN
        || u64::from(header_len) > file_len - MAGIC.len() as u64 - TRAILER_LEN
    {
        return Err(corrupt(
            path,
            format!("header length {header_len} out of range"),
        ));
    }
    let header_start = file_len - TRAILER_LEN - u64::from(header_len);
    f.seek(SeekFrom::Start(header_start))
        .map_err(io_err(path))?;
    let mut header_bytes = vec![0u8; header_len as usize];
    f.read_exact(&mut header_bytes).map_err(io_err(path))?;
    if blake3::hash(&header_bytes).as_bytes() != &trailer[4..36] {
        return Err(corrupt(path, "header checksum mismatch"));
    }
    let header: SnapshotHeader =
        verisim_vocab::cbor::decode_exact(&header_bytes).map_err(|e| match e {
            CborError::TrailingBytes(_) => corrupt(path, "trailing bytes after the header"),
            other => corrupt(path, format!("header is not CBOR: {other}")),
        })?;
    if !READ_FORMATS.contains(&header.format) {
        return Err(SnapshotError::UnknownFormat {
            path: path.to_owned(),
            found: header.format,
        });
    }
    if header.body_len != header_start - MAGIC.len() as u64 {
        return Err(corrupt(path, "body length does not match the file size"));
    }
    Ok(header)
}

/// Checks every checksum of the file, streaming the body; returns its header.
pub fn verify_snapshot(path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let file_len = f.metadata().map_err(io_err(path))?.len();
    verify_from(path, &mut f, file_len)
}

pub(crate) fn verify_from(
    path: &Path,
    f: &mut dyn Source,
    file_len: u64,
) -> Result<SnapshotHeader, SnapshotError> {
    let header = header_from(path, f, file_len)?;
    f.seek(SeekFrom::Start(MAGIC.len() as u64))
        .map_err(io_err(path))?;
    let mut hasher = blake3::Hasher::new();
    let copied = io::copy(&mut f.take(header.body_len), &mut hasher).map_err(io_err(path))?;
    if copied != header.body_len || hasher.finalize().as_bytes() != &header.body_blake3 {
        return Err(corrupt(path, "body checksum mismatch"));
    }
    Ok(header)
}

/// Reads `len` bytes at `offset` of a snapshot file, as one chunk of a transfer to a follower
/// (the follower checks the whole file once it has every chunk).
pub fn read_chunk(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::new();
    f.take(len).read_to_end(&mut data)?;
    Ok(data)
}

/// Reads a snapshot's header and body, refusing it unless every checksum matches.
pub fn read_snapshot(path: &Path) -> Result<(SnapshotHeader, Vec<u8>), SnapshotError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let file_len = f.metadata().map_err(io_err(path))?.len();
    read_from(path, &mut f, file_len)
}

fn read_from(
    path: &Path,
    f: &mut dyn Source,
    file_len: u64,
) -> Result<(SnapshotHeader, Vec<u8>), SnapshotError> {
    let header = header_from(path, f, file_len)?;
    f.seek(SeekFrom::Start(MAGIC.len() as u64))
        .map_err(io_err(path))?;
    let len = usize::try_from(header.body_len).map_err(|_| corrupt(path, "body too large"))?;
    let mut body = vec![0u8; len];
    f.read_exact(&mut body).map_err(io_err(path))?;
    if blake3::hash(&body).as_bytes() != &header.body_blake3 {
        return Err(corrupt(path, "body checksum mismatch"));
    }
    Ok((header, body))
}

/// Why a body did not decode: the disk failed (retry), or the bytes are wrong (corruption).
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("{0}")]
    Malformed(String),
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    len: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Reads a snapshot and decodes its body as a stream (never whole in memory): `decode` reads the
/// body from a buffered reader that ends where the body ends. The value is returned only if
/// `decode` consumed the body exactly and every checksum matches; a body that does not decode is
/// corruption, unless the disk failed while reading it.
pub fn read_snapshot_with<T>(
    path: &Path,
    decode: impl FnOnce(&SnapshotHeader, &mut dyn BufRead) -> Result<T, BodyError>,
) -> Result<(SnapshotHeader, T), SnapshotError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let file_len = f.metadata().map_err(io_err(path))?.len();
    read_with_from(path, &mut f, file_len, decode)
}

pub(crate) fn read_with_from<T>(
    path: &Path,
    f: &mut dyn Source,
    file_len: u64,
    decode: impl FnOnce(&SnapshotHeader, &mut dyn BufRead) -> Result<T, BodyError>,
) -> Result<(SnapshotHeader, T), SnapshotError> {
    let header = header_from(path, f, file_len)?;
    f.seek(SeekFrom::Start(MAGIC.len() as u64))
        .map_err(io_err(path))?;
    // The hasher sits below the buffer, so it sees large reads (BLAKE3 is fastest on those).
    let mut hashing = HashingReader {
        inner: f.take(header.body_len),
        hasher: blake3::Hasher::new(),
        len: 0,
    };
    let mut body = BufReader::with_capacity(1 << 20, &mut hashing);
    let decoded = decode(&header, &mut body);
    let rest = match &decoded {
        // What the decoder left must be nothing.
        Ok(_) => body.fill_buf().map_err(io_err(path))?.len(),
        // Hash the rest, so a flipped byte is reported as the checksum failure it is.
        Err(_) => {
            io::copy(&mut body, &mut io::sink()).map_err(io_err(path))?;
            0
        }
    };
    drop(body);
    let sum_ok = hashing.len == header.body_len
        && hashing.hasher.finalize().as_bytes() == &header.body_blake3;
    match decoded {
        Err(BodyError::Io(e)) => Err(io_err(path)(e)),
        Ok(_) if rest > 0 => Err(corrupt(path, "bytes after the end of the decoded body")),
        _ if !sum_ok => Err(corrupt(path, "body checksum mismatch")),
        Err(BodyError::Malformed(why)) => {
            Err(corrupt(path, format!("the body does not decode: {why}")))
        }
        Ok(value) => Ok((header, value)),
    }
}

/// serde helpers: byte strings rather than arrays of integers in CBOR.
mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        d.deserialize_bytes(V)
    }
}

mod serde_bytes_array {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let v = super::serde_bytes_vec::deserialize(d)?;
        <[u8; 32]>::try_from(v.as_slice())
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, body: &[u8]) -> (PathBuf, SnapshotHeader) {
        let path = dir.join("s.vsnap");
        let header =
            write_snapshot(&path, 42, 7, vec![1, 2, 3], 1_000, |w| w.write_all(body)).unwrap();
        (path, header)
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (path, header) = write(dir.path(), b"hello registry");
        assert_eq!(header.last_included_index, 42);
        assert_eq!(header.last_included_term, 7);
        assert_eq!(header.body_len, 14);
        let (back, body) = read_snapshot(&path).unwrap();
        assert_eq!(back, header);
        assert_eq!(body, b"hello registry");
        assert_eq!(verify_snapshot(&path).unwrap(), header);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), &[0xAB; 300]);
        let good = fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            assert!(
                verify_snapshot(&path).is_err() && read_snapshot(&path).is_err(),
                "flip at byte {i} of {} went unnoticed",
                good.len()
            );
        }
    }

    #[test]
    fn truncated_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), &[7; 100]);
        let good = fs::read(&path).unwrap();
        for len in [0, 5, 8, 50, good.len() - 1] {
            fs::write(&path, &good[..len]).unwrap();
            assert!(read_snapshot(&path).is_err(), "truncated to {len} accepted");
        }
    }

    /// A disk that fails with EIO once `fail_at` bytes have been read (or at any seek past it).
    struct FailingDisk {
        inner: io::Cursor<Vec<u8>>,
        fail_at: u64,
    }

    impl FailingDisk {
        fn eio() -> io::Error {
            io::Error::from_raw_os_error(5)
        }
    }

    impl Read for FailingDisk {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let pos = self.inner.position();
            if pos >= self.fail_at {
                return Err(Self::eio());
            }
            let room = (self.fail_at - pos).min(buf.len() as u64) as usize;
            self.inner.read(&mut buf[..room])
        }
    }

    impl Seek for FailingDisk {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn an_io_error_anywhere_is_io_and_a_flipped_byte_anywhere_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (path, header) = write(dir.path(), &[0x5A; 200]);
        let good = fs::read(&path).unwrap();
        let len = good.len() as u64;
        for fail_at in 0..len {
            let mut disk = FailingDisk {
                inner: io::Cursor::new(good.clone()),
                fail_at,
            };
            let e = verify_from(&path, &mut disk, len).unwrap_err();
            assert!(
                !e.is_corruption() && matches!(e, SnapshotError::Io { .. }),
                "EIO at byte {fail_at} was taken for corruption: {e}"
            );
            let mut disk = FailingDisk {
                inner: io::Cursor::new(good.clone()),
                fail_at,
            };
            let e = read_from(&path, &mut disk, len).unwrap_err();
            assert!(!e.is_corruption(), "read: EIO at {fail_at}: {e}");
            assert_eq!(e.path(), path);
            let mut disk = FailingDisk {
                inner: io::Cursor::new(good.clone()),
                fail_at,
            };
            let e = read_with_from(&path, &mut disk, len, read_all).unwrap_err();
            assert!(!e.is_corruption(), "streamed read: EIO at {fail_at}: {e}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x80;
            let e = verify_from(&path, &mut io::Cursor::new(bad.clone()), len).unwrap_err();
            assert!(
                e.is_corruption(),
                "flip at {i} not taken for corruption: {e}"
            );
            let e = read_with_from(&path, &mut io::Cursor::new(bad), len, read_all).unwrap_err();
            assert!(e.is_corruption(), "streamed read: flip at {i}: {e}");
        }
        let (_, body) =
            read_with_from(&path, &mut io::Cursor::new(good.clone()), len, read_all).unwrap();
        assert_eq!(body, vec![0x5A; 200]);
        let back = verify_from(&path, &mut io::Cursor::new(good), len).unwrap();
        assert_eq!(back, header);
    }

    /// A decoder that takes the whole body.
    fn read_all(_: &SnapshotHeader, r: &mut dyn BufRead) -> Result<Vec<u8>, BodyError> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map_err(BodyError::Io)?;
        Ok(v)
    }

    #[test]
    fn a_streamed_read_refuses_what_the_decoder_leaves_or_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write(dir.path(), b"0123456789");
        let e = read_snapshot_with(&path, |_, r| {
            let mut five = [0u8; 5];
            r.read_exact(&mut five).map_err(BodyError::Io)?;
            Ok(five)
        })
        .unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("after the end"),
            "{e}"
        );
        let e = read_snapshot_with(&path, |_, _| -> Result<(), _> {
            Err(BodyError::Malformed("no".into()))
        })
        .unwrap_err();
        assert!(
            e.is_corruption() && e.to_string().contains("does not decode"),
            "{e}"
        );
        let e = read_snapshot_with(&path, |_, _| -> Result<(), _> {
            Err(BodyError::Io(io::Error::from_raw_os_error(5)))
        })
        .unwrap_err();
        assert!(!e.is_corruption(), "{e}");
    }

    #[test]
    fn formats_outside_those_read_are_refused_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.vsnap");
        for format in [1, 2] {
            write_snapshot_as(format, &path, 1, 1, vec![], 0, |w| w.write_all(b"x")).unwrap();
            assert_eq!(read_header(&path).unwrap().format, format);
        }
        for format in [0, 3, u32::MAX] {
            write_snapshot_as(format, &path, 1, 1, vec![], 0, |w| w.write_all(b"x")).unwrap();
            let e = verify_snapshot(&path).unwrap_err();
            assert!(
                matches!(e, SnapshotError::UnknownFormat { found, .. } if found == format),
                "{e}"
            );
            assert!(e.is_corruption());
        }
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_io_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let e = verify_snapshot(&dir.path().join("missing.vsnap")).unwrap_err();
        assert!(!e.is_corruption(), "{e}");
    }

    #[test]
    fn a_failing_body_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.vsnap");
        let r = write_snapshot(&path, 1, 1, vec![], 0, |w| {
            w.write_all(b"part")?;
            Err(io::Error::other("boom"))
        });
        assert!(matches!(r, Err(SnapshotError::Io { .. })));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! Test helpers.

use crate::db::{StoreConfig, open_db};

/// A fresh database in a temporary directory (removed when the `TempDir` drops).
pub(crate) fn temp_db() -> (tempfile::TempDir, fjall::Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path(), &StoreConfig::default()).expect("open db");
    (dir, db)
}

pub(crate) fn id(s: &str) -> crate::EntityId {
    crate::EntityId::new(s).expect("valid id")
}

/// Checks every bucket digest against the XOR of its listed items, and every item against its data.
pub(crate) fn check_digests(m: &dyn crate::Modality) {
    for (b, d) in m.bucket_digests(0..crate::BUCKETS).unwrap() {
        let mut x = crate::BucketDigest::default();
        for (i, h) in m.bucket_items(b).unwrap() {
            x.toggle(&i, &h);
            assert_eq!(m.verify_item(&i).unwrap(), Some(h));
        }
        assert_eq!(x, d, "bucket {b}");
    }
}

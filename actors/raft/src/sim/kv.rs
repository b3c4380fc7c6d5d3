//! The simulated application: a key-value register with put, get and compare-and-set, its command
//! encoding, and its snapshot format.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::types::Index;

/// A client operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    Put {
        key: u8,
        value: u64,
    },
    Get {
        key: u8,
    },
    /// Set `key` to `new` if it currently holds `expected` (`None`: the key is absent).
    Cas {
        key: u8,
        expected: Option<u64>,
        new: u64,
    },
}

impl KvOp {
    pub fn key(&self) -> u8 {
        match *self {
            KvOp::Put { key, .. } | KvOp::Get { key } | KvOp::Cas { key, .. } => key,
        }
    }
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvResult {
    Put,
    Get(Option<u64>),
    Cas(bool),
}

const NONE: u64 = u64::MAX;

/// A command in the log: the operation plus who asked (for tracing and duplicate detection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    pub client: u32,
    pub op_id: u64,
    pub op: KvOp,
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, key, a, b) = match self.op {
            KvOp::Put { key, value } => (1u8, key, value, 0),
            KvOp::Get { key } => (2, key, 0, 0),
            KvOp::Cas { key, expected, new } => (3, key, expected.unwrap_or(NONE), new),
        };
        let mut out = Vec::with_capacity(30);
        out.push(tag);
        out.extend_from_slice(&self.client.to_be_bytes());
        out.extend_from_slice(&self.op_id.to_be_bytes());
        out.push(key);
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
        out
    }

    /// `None` for bytes that are not a command (the state machine skips them).
    pub fn decode(bytes: &[u8]) -> Option<Command> {
        if bytes.len() != 30 {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let client = u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?);
        let op_id = u64_at(5)?;
        let key = bytes[13];
        let (a, b) = (u64_at(14)?, u64_at(22)?);
        let op = match bytes[0] {
            1 => KvOp::Put { key, value: a },
            2 => KvOp::Get { key },
            3 => KvOp::Cas {
                key,
                expected: (a != NONE).then_some(a),
                new: b,
            },
            _ => return None,
        };
        Some(Command { client, op_id, op })
    }
}

/// The register state and how far it has applied the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pub data: BTreeMap<u8, u64>,
    pub applied: Index,
}

impl Kv {
    pub fn apply(&mut self, index: Index, op: KvOp) -> KvResult {
        debug_assert!(index > self.applied);
        self.applied = index;
        self.execute(op)
    }

    /// Run an operation without moving the applied index (reads served after a read index).
    pub fn execute(&mut self, op: KvOp) -> KvResult {
        match op {
            KvOp::Put { key, value } => {
                self.data.insert(key, value);
                KvResult::Put
            }
            KvOp::Get { key } => KvResult::Get(self.data.get(&key).copied()),
            KvOp::Cas { key, expected, new } => {
                if self.data.get(&key).copied() == expected {
                    self.data.insert(key, new);
                    KvResult::Cas(true)
                } else {
                    KvResult::Cas(false)
                }
            }
        }
    }

    /// A fingerprint of the data (not the applied index), compared across nodes at equal indexes.
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.data.hash(&mut h);
        h.finish()
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.data.len() * 9);
        out.extend_from_slice(&self.applied.to_be_bytes());
        for (&k, &v) in &self.data {
            out.push(k);
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    pub fn from_snapshot(bytes: &[u8]) -> Option<Kv> {
        if bytes.len() < 8 || !(bytes.len() - 8).is_multiple_of(9) {
            return None;
        }
        let applied = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let mut data = BTreeMap::new();
        for rec in bytes[8..].chunks_exact(9) {
            data.insert(rec[0], u64::from_be_bytes(rec[1..].try_into().ok()?));
        }
        Some(Kv { data, applied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips() {
        for op in [
            KvOp::Put { key: 2, value: 7 },
            KvOp::Get { key: 1 },
            KvOp::Cas {
                key: 0,
                expected: None,
                new: 3,
            },
            KvOp::Cas {
                key: 0,
                expected: Some(9),
                new: 3,
            },
        ] {
            let c = Command {
                client: 4,
                op_id: 11,
                op,
            };
            assert_eq!(Command::decode(&c.encode()), Some(c));
        }
        assert_eq!(Command::decode(b"junk"), None);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut kv = Kv::default();
        kv.apply(1, KvOp::Put { key: 1, value: 5 });
        kv.apply(
            2,
            KvOp::Cas {
                key: 2,
                expected: None,
                new: 6,
            },
        );
        assert_eq!(Kv::from_snapshot(&kv.snapshot_bytes()), Some(kv));
    }
}

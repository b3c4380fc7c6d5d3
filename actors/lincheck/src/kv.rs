//! The key-value register model: put, get, compare-and-set and delete on independent keys.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::history::{History, Operation};
use crate::model::{Model, Partition};

/// A request to the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvInput<K, V> {
    /// Set `key` to `value`. Answered by [`KvOutput::Ok`].
    Put {
        /// The key.
        key: K,
        /// The new value.
        value: V,
    },
    /// Read `key`. Answered by [`KvOutput::Value`] (`None`: absent).
    Get {
        /// The key.
        key: K,
    },
    /// Set `key` to `new` if its value is `expected` (`None`: absent). Answered by
    /// [`KvOutput::Swapped`] saying whether it did.
    Cas {
        /// The key.
        key: K,
        /// The value required for the swap.
        expected: Option<V>,
        /// The value written if it swaps.
        new: V,
    },
    /// Remove `key`. Answered by [`KvOutput::Ok`].
    Delete {
        /// The key.
        key: K,
    },
}

impl<K, V> KvInput<K, V> {
    /// `put(key, value)`.
    pub fn put(key: K, value: V) -> Self {
        Self::Put { key, value }
    }

    /// `get(key)`.
    pub fn get(key: K) -> Self {
        Self::Get { key }
    }

    /// `cas(key, expected, new)`.
    pub fn cas(key: K, expected: Option<V>, new: V) -> Self {
        Self::Cas { key, expected, new }
    }

    /// `delete(key)`.
    pub fn delete(key: K) -> Self {
        Self::Delete { key }
    }

    /// The key the request is about.
    pub fn key(&self) -> &K {
        match self {
            Self::Put { key, .. }
            | Self::Get { key }
            | Self::Cas { key, .. }
            | Self::Delete { key } => key,
        }
    }
}

/// An answer from the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvOutput<V> {
    /// A put or a delete was done.
    Ok,
    /// The value read (`None`: absent).
    Value(Option<V>),
    /// Whether a compare-and-set swapped.
    Swapped(bool),
}

/// A history of key-value operations.
pub type KvHistory<K = String, V = String> = History<KvInput<K, V>, KvOutput<V>>;

/// An operation of a [`KvHistory`].
pub type KvOperation<K = String, V = String> = Operation<KvInput<K, V>, KvOutput<V>>;

/// The sequential specification of a map of independent registers.
///
/// Each key is its own partition, so the search only ever sees one key at a time and the state
/// is just that key's value (`None`: absent).
pub struct KvModel<K = String, V = String>(PhantomData<fn() -> (K, V)>);

impl<K, V> KvModel<K, V> {
    /// The model.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<K, V> Default for KvModel<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Clone for KvModel<K, V> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<K, V> Debug for KvModel<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvModel")
    }
}

impl<K, V> Model for KvModel<K, V>
where
    K: Ord + Debug,
    V: Clone + Eq + Hash + Debug,
{
    type Input = KvInput<K, V>;
    type Output = KvOutput<V>;
    type State = Option<V>;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &KvInput<K, V>,
        output: Option<&KvOutput<V>>,
    ) -> Option<Option<V>> {
        match (input, output) {
            (KvInput::Put { value, .. }, None | Some(KvOutput::Ok)) => Some(Some(value.clone())),
            (KvInput::Delete { .. }, None | Some(KvOutput::Ok)) => Some(None),
            (KvInput::Get { .. }, None) => Some(state.clone()),
            (KvInput::Get { .. }, Some(KvOutput::Value(read))) => {
                (read == state).then(|| state.clone())
            }
            (KvInput::Cas { expected, new, .. }, output) => {
                let swaps = expected == state;
                match output {
                    None => Some(if swaps {
                        Some(new.clone())
                    } else {
                        state.clone()
                    }),
                    Some(KvOutput::Swapped(said)) if *said == swaps => Some(if swaps {
                        Some(new.clone())
                    } else {
                        state.clone()
                    }),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }

    fn partition(&self, operations: &[KvOperation<K, V>]) -> Vec<Partition> {
        let mut by_key: BTreeMap<&K, Vec<usize>> = BTreeMap::new();
        for (index, op) in operations.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(index);
        }
        by_key
            .into_iter()
            .map(|(key, operations)| Partition {
                label: format!("key {key:?}"),
                operations,
            })
            .collect()
    }

    fn is_read_only(&self, input: &KvInput<K, V>) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    fn validate(&self, input: &KvInput<K, V>, output: Option<&KvOutput<V>>) -> Result<(), String> {
        let fits = match (input, output) {
            (_, None) => true,
            (KvInput::Put { .. } | KvInput::Delete { .. }, Some(o)) => *o == KvOutput::Ok,
            (KvInput::Get { .. }, Some(o)) => matches!(o, KvOutput::Value(_)),
            (KvInput::Cas { .. }, Some(o)) => matches!(o, KvOutput::Swapped(_)),
        };
        if fits {
            Ok(())
        } else {
            Err(format!("{input:?} cannot be answered by {output:?}"))
        }
    }

    fn describe_operation(&self, input: &KvInput<K, V>, output: Option<&KvOutput<V>>) -> String {
        let call = match input {
            KvInput::Put { key, value } => format!("put({key:?}, {value:?})"),
            KvInput::Get { key } => format!("get({key:?})"),
            KvInput::Cas { key, expected, new } => format!("cas({key:?}, {expected:?}, {new:?})"),
            KvInput::Delete { key } => format!("delete({key:?})"),
        };
        let answer = match output {
            None => "?".to_owned(),
            Some(KvOutput::Ok) => "ok".to_owned(),
            Some(KvOutput::Value(v)) => format!("{v:?}"),
            Some(KvOutput::Swapped(s)) => format!("{s}"),
        };
        format!("{call} -> {answer}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type M = KvModel<&'static str, u32>;

    #[test]
    fn put_get_delete_follow_the_register() {
        let m = M::new();
        let s = m.init();
        let s = m
            .step(&s, &KvInput::put("k", 1), Some(&KvOutput::Ok))
            .unwrap();
        assert_eq!(s, Some(1));
        assert!(
            m.step(&s, &KvInput::get("k"), Some(&KvOutput::Value(Some(1))))
                .is_some()
        );
        assert!(
            m.step(&s, &KvInput::get("k"), Some(&KvOutput::Value(None)))
                .is_none()
        );
        let s = m.step(&s, &KvInput::delete("k"), None).unwrap();
        assert_eq!(s, None);
    }

    #[test]
    fn cas_swaps_only_on_the_expected_value() {
        let m = M::new();
        let s = Some(1);
        let yes = Some(&KvOutput::Swapped(true));
        let no = Some(&KvOutput::Swapped(false));
        assert_eq!(
            m.step(&s, &KvInput::cas("k", Some(1), 2), yes),
            Some(Some(2))
        );
        assert_eq!(m.step(&s, &KvInput::cas("k", Some(1), 2), no), None);
        assert_eq!(m.step(&s, &KvInput::cas("k", None, 2), no), Some(Some(1)));
        assert_eq!(m.step(&s, &KvInput::cas("k", None, 2), yes), None);
        // Unknown outcome: whatever the register says.
        assert_eq!(
            m.step(&s, &KvInput::cas("k", Some(1), 2), None),
            Some(Some(2))
        );
        assert_eq!(
            m.step(&s, &KvInput::cas("k", Some(3), 2), None),
            Some(Some(1))
        );
    }

    #[test]
    fn mismatched_outputs_are_malformed() {
        let m = M::new();
        assert!(m.validate(&KvInput::get("k"), Some(&KvOutput::Ok)).is_err());
        assert!(
            m.validate(&KvInput::put("k", 1), Some(&KvOutput::Swapped(true)))
                .is_err()
        );
        assert!(m.validate(&KvInput::cas("k", None, 1), None).is_ok());
    }

    #[test]
    fn partitions_by_key() {
        let m = M::new();
        let ops = vec![
            Operation::returned(1, KvInput::put("b", 1), 0, KvOutput::Ok, 1),
            Operation::returned(1, KvInput::get("a"), 2, KvOutput::Value(None), 3),
            Operation::unknown(2, KvInput::get("b"), 0),
            Operation::unknown(2, KvInput::put("a", 1), 4),
        ];
        let parts = m.partition(&ops);
        assert_eq!(
            parts,
            vec![
                Partition {
                    label: "key \"a\"".into(),
                    operations: vec![1, 3]
                },
                Partition {
                    label: "key \"b\"".into(),
                    operations: vec![0, 2]
                },
            ]
        );
    }
}

//! An entity's items as the registry holds them: one slot per modality, inline in the entity.
//!
//! A `BTreeMap<ModalityKind, ItemMeta>` gave each entity a B-tree leaf of eleven 40-byte slots — a
//! 464-byte allocation to hold four items — and a million-entity registry spent about 460 MB on
//! them, which a joining node allocates and faults in while it decodes the snapshot. [`Items`] is
//! four optional slots in the entity itself. It reads like the map it replaces (iteration in
//! modality order, `get`, `len`) and serializes exactly as it did, so logs, snapshots and messages
//! are unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use verisim_vocab::Modality as ModalityKind;

use crate::ItemMeta;

/// The modalities in slot order; `'static` so iteration can lend `&ModalityKind` as a map does.
static KINDS: [ModalityKind; 4] = ModalityKind::ALL;

/// At most one item per modality, in modality order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Items([Option<ItemMeta>; 4]);

fn slot(kind: ModalityKind) -> usize {
    match kind {
        ModalityKind::Graph => 0,
        ModalityKind::Vector => 1,
        ModalityKind::Tensor => 2,
        ModalityKind::Semantic => 3,
    }
}

impl Items {
    pub fn get(&self, kind: &ModalityKind) -> Option<&ItemMeta> {
        self.0[slot(*kind)].as_ref()
    }

    /// Sets `kind`'s item, returning the one it replaces.
    pub fn insert(&mut self, kind: ModalityKind, item: ItemMeta) -> Option<ItemMeta> {
        self.0[slot(kind)].replace(item)
    }

    pub fn len(&self) -> usize {
        self.0.iter().filter(|i| i.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items present, in modality order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            items: self,
            next: 0,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &'static ModalityKind> {
        self.iter().map(|(k, _)| k)
    }

    /// The same items as a map (what commands and the public API carry).
    pub fn to_map(&self) -> BTreeMap<ModalityKind, ItemMeta> {
        self.iter().map(|(k, i)| (*k, *i)).collect()
    }
}

/// The items present, in modality order ([`Items::iter`]).
pub struct Iter<'a> {
    items: &'a Items,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'static ModalityKind, &'a ItemMeta);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(slot) = self.items.0.get(self.next) {
            let kind = &KINDS[self.next];
            self.next += 1;
            if let Some(item) = slot {
                return Some((kind, item));
            }
        }
        None
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = (&'static ModalityKind, &'a ItemMeta);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl FromIterator<(ModalityKind, ItemMeta)> for Items {
    /// A modality given twice keeps its last item, as a map collects.
    fn from_iter<I: IntoIterator<Item = (ModalityKind, ItemMeta)>>(iter: I) -> Self {
        let mut items = Items::default();
        for (k, i) in iter {
            items.insert(k, i);
        }
        items
    }
}

impl From<&BTreeMap<ModalityKind, ItemMeta>> for Items {
    fn from(map: &BTreeMap<ModalityKind, ItemMeta>) -> Self {
        map.iter().map(|(k, i)| (*k, *i)).collect()
    }
}

impl PartialEq<BTreeMap<ModalityKind, ItemMeta>> for Items {
    fn eq(&self, map: &BTreeMap<ModalityKind, ItemMeta>) -> bool {
        self.len() == map.len() && map.iter().all(|(k, i)| self.get(k) == Some(i))
    }
}

impl fmt::Debug for Items {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As the map it replaces: a map of the present items in modality order.
impl Serialize for Items {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, i) in self.iter() {
            map.serialize_entry(k, i)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<ModalityKind, ItemMeta>::deserialize(d).map(|m| Items::from(&m))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use verisim_vocab::ContentHash;

    use super::*;

    fn any_map() -> impl Strategy<Value = BTreeMap<ModalityKind, ItemMeta>> {
        proptest::collection::btree_map(
            (0usize..4).prop_map(|i| KINDS[i]),
            (any::<[u8; 32]>(), any::<u64>()).prop_map(|(h, size)| ItemMeta {
                hash: ContentHash(h),
                size,
            }),
            0..=4,
        )
    }

    proptest! {
        /// Held as slots, the items read, iterate and encode (CBOR and JSON) exactly as the map.
        #[test]
        fn items_are_the_map_they_replace(map in any_map()) {
            let items = Items::from(&map);
            prop_assert_eq!(&items, &map);
            prop_assert_eq!(items.len(), map.len());
            prop_assert_eq!(items.to_map(), map.clone());
            let pairs: Vec<_> = items.iter().map(|(k, i)| (*k, *i)).collect();
            let expected: Vec<_> = map.iter().map(|(k, i)| (*k, *i)).collect();
            prop_assert_eq!(pairs, expected);
            for k in KINDS {
                prop_assert_eq!(items.get(&k), map.get(&k));
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ciborium::ser::into_writer(&items, &mut a).unwrap();
            ciborium::ser::into_writer(&map, &mut b).unwrap();
            prop_assert_eq!(&a, &b);
            let back: Items = ciborium::de::from_reader(a.as_slice()).unwrap();
            prop_assert_eq!(&back, &items);
            prop_assert_eq!(
                serde_json::to_string(&items).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
        }
    }

    #[test]
    fn four_items_live_inside_the_entity() {
        assert!(std::mem::size_of::<Items>() <= 4 * 48);
    }
}

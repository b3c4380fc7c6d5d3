use proptest::prelude::*;

use super::*;
use crate::db::Limits;
use crate::testutil::{check_digests, id, temp_db};
use crate::value::Datatype;

fn store() -> (tempfile::TempDir, Database, SemanticStore) {
    let (dir, db) = temp_db();
    let s = SemanticStore::open(&db, &Limits::default()).unwrap();
    (dir, db, s)
}

const THING: &str = "https://schema.org/Thing";
const PERSON: &str = "https://schema.org/Person";
const EMPLOYEE: &str = "https://example.org/Employee";

fn prop(datatype: Datatype) -> PropertyDef {
    PropertyDef {
        datatype,
        pattern: None,
        min: None,
        max: None,
    }
}

fn ty(iri: &str, sup: &[&str]) -> TypeDef {
    TypeDef {
        iri: iri.into(),
        label: iri.rsplit('/').next().unwrap_or(iri).into(),
        supertypes: sup.iter().map(|s| (*s).to_owned()).collect(),
        required: BTreeSet::new(),
        properties: BTreeMap::new(),
    }
}

fn schema(s: &mut SemanticStore) {
    let mut thing = ty(THING, &[]);
    thing.properties.insert("name".into(), prop(Datatype::Text));
    thing.required.insert("name".into());
    s.define_type(thing).unwrap();
    let mut person = ty(PERSON, &[THING]);
    person.properties.insert(
        "email".into(),
        PropertyDef {
            pattern: Some(r"[^@\s]+@[^@\s]+".into()),
            ..prop(Datatype::Text)
        },
    );
    person.properties.insert(
        "age".into(),
        PropertyDef {
            min: Some(0.0),
            max: Some(150.0),
            ..prop(Datatype::Int)
        },
    );
    s.define_type(person).unwrap();
    let mut emp = ty(EMPLOYEE, &[PERSON]);
    emp.properties
        .insert("salary".into(), prop(Datatype::Float));
    emp.required.insert("salary".into());
    s.define_type(emp).unwrap();
}

fn ann(types: &[&str], props: &[(&str, Value)]) -> Annotation {
    Annotation {
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        properties: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        proofs: Vec::new(),
    }
}

#[test]
fn schema_definitions_are_checked() {
    let (_d, _db, mut s) = store();
    assert!(matches!(
        s.define_type(ty(PERSON, &[THING])),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.define_type(ty("no scheme", &[])),
        Err(StoreError::InvalidName { .. })
    ));
    schema(&mut s);
    // Making Thing a subtype of Employee would close a cycle.
    assert!(matches!(
        s.define_type(ty(THING, &[EMPLOYEE])),
        Err(StoreError::InvalidInput(_))
    ));
    let mut bad = ty("urn:x", &[]);
    bad.properties.insert(
        "p".into(),
        PropertyDef {
            pattern: Some("(".into()),
            ..prop(Datatype::Text)
        },
    );
    assert!(matches!(
        s.define_type(bad.clone()),
        Err(StoreError::InvalidInput(_))
    ));
    bad.properties.insert(
        "p".into(),
        PropertyDef {
            min: Some(1.0),
            ..prop(Datatype::Text)
        },
    );
    assert!(matches!(
        s.define_type(bad.clone()),
        Err(StoreError::InvalidInput(_))
    ));
    bad.properties.clear();
    bad.required.insert("ghost".into());
    assert!(matches!(
        s.define_type(bad),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(
        s.supertypes(EMPLOYEE).unwrap(),
        BTreeSet::from([THING.to_owned(), PERSON.to_owned()])
    );
}

#[test]
fn validation_lists_every_violation_precisely() {
    let (_d, _db, mut s) = store();
    schema(&mut s);
    let bad = ann(
        &[EMPLOYEE, "urn:unknown"],
        &[
            ("email", Value::Text("not an email".into())),
            ("age", Value::Int(200)),
            ("salary", Value::Text("lots".into())),
            ("shoe", Value::Int(42)),
        ],
    );
    let Err(StoreError::Validation { violations, .. }) = s.annotate(&id("e"), bad) else {
        panic!("expected a validation error");
    };
    assert_eq!(
        violations,
        vec![
            Violation::UnknownType {
                iri: "urn:unknown".into()
            },
            Violation::MissingRequired {
                type_iri: THING.into(),
                property: "name".into()
            },
            Violation::OutOfRange {
                property: "age".into(),
                type_iri: PERSON.into(),
                value: 200.0,
                min: Some(0.0),
                max: Some(150.0)
            },
            Violation::PatternMismatch {
                property: "email".into(),
                type_iri: PERSON.into(),
                pattern: r"[^@\s]+@[^@\s]+".into()
            },
            Violation::WrongDatatype {
                property: "salary".into(),
                type_iri: EMPLOYEE.into(),
                expected: Datatype::Float,
                found: Datatype::Text
            },
            Violation::UndeclaredProperty {
                property: "shoe".into()
            },
        ]
    );
    assert!(s.get(&id("e")).unwrap().is_none());
    // Int is accepted where Float is expected; the pattern must match the whole value.
    let good = ann(
        &[EMPLOYEE],
        &[
            ("name", Value::Text("Ada".into())),
            ("email", Value::Text("ada@example.org".into())),
            ("salary", Value::Int(100)),
        ],
    );
    s.annotate(&id("e"), good).unwrap();
    let v = s
        .validate(&ann(
            &[PERSON],
            &[
                ("name", Value::Text("x".into())),
                ("email", Value::Text("a@b c@d".into())),
            ],
        ))
        .unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(matches!(
        s.annotate(&id("f"), ann(&[THING], &[("name", Value::Float(f64::NAN))])),
        Err(StoreError::InvalidInput(_))
    ));
}

#[test]
fn query_by_type_includes_subtypes_and_follows_updates() {
    let (dir, db, mut s) = store();
    schema(&mut s);
    let name = || ("name", Value::Text("n".into()));
    s.annotate(&id("t"), ann(&[THING], &[name()])).unwrap();
    s.annotate(&id("p"), ann(&[PERSON], &[name()])).unwrap();
    s.annotate(
        &id("e"),
        ann(&[EMPLOYEE], &[name(), ("salary", Value::Float(1.0))]),
    )
    .unwrap();
    assert_eq!(
        s.entities_of_type(THING, true).unwrap(),
        vec![id("e"), id("p"), id("t")]
    );
    assert_eq!(s.entities_of_type(THING, false).unwrap(), vec![id("t")]);
    assert_eq!(
        s.entities_of_type(PERSON, true).unwrap(),
        vec![id("e"), id("p")]
    );
    s.annotate(&id("p"), ann(&[THING], &[name()])).unwrap();
    assert_eq!(s.entities_of_type(PERSON, true).unwrap(), vec![id("e")]);
    assert!(s.delete(&id("e")).unwrap());
    assert!(s.entities_of_type(PERSON, true).unwrap().is_empty());
    assert!(matches!(
        s.entities_of_type("urn:nope", true),
        Err(StoreError::NotFound { .. })
    ));
    check_digests(&s);
    drop(s);
    drop(db);
    let db = crate::db::open_db(dir.path(), &crate::StoreConfig::default()).unwrap();
    let s = SemanticStore::open(&db, &Limits::default()).unwrap();
    assert_eq!(s.types().count(), 3);
    assert_eq!(
        s.entities_of_type(THING, true).unwrap(),
        vec![id("p"), id("t")]
    );
    // Compiled patterns are restored too.
    assert_eq!(
        s.validate(&ann(
            &[PERSON],
            &[
                ("name", Value::Text("x".into())),
                ("email", Value::Text("bad".into()))
            ]
        ))
        .unwrap()
        .len(),
        1
    );
}

#[test]
fn proofs_are_verified_on_write_and_items_round_trip() {
    let (_d, _db, mut s) = store();
    schema(&mut s);
    let tree = MerkleTree::new(&["claim a", "claim b", "claim c"]).unwrap();
    let mut a = ann(&[THING], &[("name", Value::Text("n".into()))]);
    a.proofs.push(ProofBlob::commit("claim", b"salt").unwrap());
    a.proofs
        .push(ProofBlob::merkle("claim b", &tree.proof(1).unwrap()).unwrap());
    let h = s.annotate(&id("x"), a.clone()).unwrap();
    let mut bad = a.clone();
    bad.proofs[1].claim = "claim c".into();
    assert!(matches!(
        s.annotate(&id("y"), bad),
        Err(StoreError::Validation { ref violations, .. })
            if matches!(violations[..], [Violation::InvalidProof { index: 1, .. }])
    ));
    let ex = ExportedItem::from_bytes(
        &s.export_item(&id("x"))
            .unwrap()
            .unwrap()
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ex.hash, h);
    let (_d2, _db2, mut t) = store();
    // The importing replica needs the schema.
    assert!(matches!(
        t.import_item(&ex),
        Err(StoreError::Validation { .. })
    ));
    schema(&mut t);
    assert_eq!(t.import_item(&ex).unwrap(), h);
    assert_eq!(t.get(&id("x")).unwrap(), Some(a));
    assert_eq!(t.verify_item(&id("x")).unwrap(), Some(h));
    check_digests(&t);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Subtype closure and query-by-type equal a model over a random type DAG.
    #[test]
    fn subtype_closure_matches_a_model(
        parents in prop::collection::vec(prop::collection::btree_set(0usize..12, 0..3), 12),
        typed in prop::collection::vec(0usize..12, 0..20),
    ) {
        let (_d, _db, mut s) = store();
        let iri = |i: usize| format!("urn:t:{i}");
        // Type i may only have supertypes j < i: a DAG.
        let sup: Vec<BTreeSet<usize>> = parents
            .iter()
            .enumerate()
            .map(|(i, p)| p.iter().copied().filter(|j| *j < i).collect())
            .collect();
        for (i, p) in sup.iter().enumerate() {
            let refs: Vec<String> = p.iter().map(|j| iri(*j)).collect();
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            s.define_type(ty(&iri(i), &refs)).unwrap();
        }
        let is_sub = |a: usize, b: usize| -> bool {
            // a is b or a descends from b
            let mut stack = vec![a];
            let mut seen = BTreeSet::new();
            while let Some(x) = stack.pop() {
                if x == b { return true; }
                if seen.insert(x) { stack.extend(sup[x].iter().copied()); }
            }
            false
        };
        for (n, t) in typed.iter().enumerate() {
            s.annotate(&id(&format!("e{n}")), ann(&[&iri(*t)], &[])).unwrap();
        }
        for b in 0..12 {
            let want: BTreeSet<String> = (0..12).filter(|a| is_sub(*a, b)).map(iri).collect();
            prop_assert_eq!(s.subtypes(&iri(b)).unwrap(), want);
            let ents: BTreeSet<EntityId> = typed
                .iter()
                .enumerate()
                .filter(|(_, t)| is_sub(**t, b))
                .map(|(n, _)| id(&format!("e{n}")))
                .collect();
            prop_assert_eq!(s.entities_of_type(&iri(b), true).unwrap(), ents.into_iter().collect::<Vec<_>>());
        }
    }
}

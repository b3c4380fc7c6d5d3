use proptest::prelude::*;

use super::*;
use crate::limits::Limits;
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

/// Reopens the store on the same database (as a restarted actor would).
fn reopen(db: &Database, s: SemanticStore) -> SemanticStore {
    drop(s);
    SemanticStore::open(db, &Limits::default()).unwrap()
}

#[test]
fn a_redefinition_that_would_break_a_subtype_is_refused() {
    let (_d, db, mut s) = store();
    schema(&mut s);
    // Person requires `name`, which only Thing declares.
    let mut person = s.get_type(PERSON).unwrap().clone();
    person.required.insert("name".into());
    s.define_type(person.clone()).unwrap();
    // Thing stops declaring it: fine for Thing itself, fatal for Person.
    let mut thing = s.get_type(THING).unwrap().clone();
    thing.properties.clear();
    thing.required.clear();
    let e = s.define_type(thing.clone()).unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains(PERSON), "{e}");
    // A grandchild too: Employee requires `email`, which Person declares.
    let mut emp = s.get_type(EMPLOYEE).unwrap().clone();
    emp.required.insert("email".into());
    s.define_type(emp).unwrap();
    let mut person_without_email = person.clone();
    person_without_email.properties.remove("email");
    let e = s.define_type(person_without_email).unwrap_err();
    assert!(matches!(e, StoreError::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains(EMPLOYEE), "{e}");
    // Nothing was written: the schema is as before, and it reopens without problems.
    assert_eq!(s.get_type(THING).unwrap().properties.len(), 1);
    assert_eq!(s.get_type(PERSON).unwrap(), &person);
    let mut s = reopen(&db, s);
    assert_eq!(s.types().count(), 3);
    assert!(s.schema_problems().is_empty(), "{:?}", s.schema_problems());
    assert_eq!(s.get_type(THING).unwrap().properties.len(), 1);
    // The same change together with the subtype that relies on it is a valid migration.
    person
        .properties
        .insert("name".into(), prop(Datatype::Text));
    s.define_types(vec![thing.clone(), person.clone()]).unwrap();
    let mut s = reopen(&db, s);
    assert!(s.schema_problems().is_empty(), "{:?}", s.schema_problems());
    assert_eq!(s.get_type(THING).unwrap(), &thing);
    assert_eq!(s.get_type(PERSON).unwrap(), &person);
    // A batch is checked as a whole: a cycle or a missing supertype anywhere refuses all of it.
    let mut cyclic = thing;
    cyclic.supertypes.insert(EMPLOYEE.into());
    assert!(matches!(
        s.define_types(vec![ty("urn:fine", &[]), cyclic]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.define_types(vec![
            ty("urn:fine", &[]),
            ty("urn:orphan", &["urn:missing"])
        ]),
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.get_type("urn:fine").is_none());
}

#[test]
fn a_broken_stored_schema_still_opens_and_can_be_repaired() {
    let (_d, db, mut s) = store();
    schema(&mut s);
    // What an older version could store: Thing without `name` while Person requires it, plus a
    // record that does not decode and a pattern that does not compile.
    let mut thing = s.get_type(THING).unwrap().clone();
    thing.properties.clear();
    thing.required.clear();
    let mut person = s.get_type(PERSON).unwrap().clone();
    person.required.insert("name".into());
    let mut bad_pattern = ty("urn:pat", &[]);
    bad_pattern.properties.insert(
        "p".into(),
        PropertyDef {
            pattern: Some("(".into()),
            ..prop(Datatype::Text)
        },
    );
    let ks = crate::keyspace::open(&db, "semantic.schema").unwrap();
    let mut b = db.batch();
    b.insert(
        &ks,
        THING.as_bytes(),
        crate::codec::to_cbor(&thing).unwrap(),
    );
    b.insert(
        &ks,
        PERSON.as_bytes(),
        crate::codec::to_cbor(&person).unwrap(),
    );
    b.insert(
        &ks,
        "urn:pat".as_bytes(),
        crate::codec::to_cbor(&bad_pattern).unwrap(),
    );
    b.insert(&ks, "urn:garbage".as_bytes(), vec![0xff, 0x00]);
    b.commit().unwrap();

    let mut s = reopen(&db, s);
    let problems = s.schema_problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains(PERSON) && p.contains("name"))
    );
    assert!(problems.iter().any(|p| p.contains("urn:garbage")));
    assert!(problems.iter().any(|p| p.contains("urn:pat")));
    assert_eq!(s.types().count(), 4, "the undecodable record is skipped");
    // Validation works and fails closed on the pattern that could not be compiled.
    let v = s
        .validate(&ann(&["urn:pat"], &[("p", Value::Text("x".into()))]))
        .unwrap();
    assert!(
        matches!(v[..], [Violation::PatternMismatch { .. }]),
        "{v:?}"
    );
    // The broken state does not block unrelated changes, nor changes to the broken types.
    let mut other = ty("urn:other", &[THING]);
    other.properties.insert("x".into(), prop(Datatype::Int));
    s.define_type(other).unwrap();
    let mut fixed = thing.clone();
    fixed.properties.insert("name".into(), prop(Datatype::Text));
    s.define_type(fixed).unwrap();
    s.define_type(ty("urn:pat", &[])).unwrap();
    s.define_type(ty("urn:garbage", &[])).unwrap();
    let s = reopen(&db, s);
    assert!(s.schema_problems().is_empty(), "{:?}", s.schema_problems());
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

#[test]
fn annotations_are_limited_by_their_encoded_size() {
    let named = |len: usize| ann(&[THING], &[("name", Value::Text("x".repeat(len)))]);
    let limit = crate::codec::to_cbor(&named(40)).unwrap().len();
    let (_d, db) = crate::testutil::temp_db();
    let mut s = SemanticStore::open(
        &db,
        &Limits {
            max_annotation_bytes: limit,
            ..Limits::default()
        },
    )
    .unwrap();
    schema(&mut s);
    let e = id("e");
    let h = s.annotate(&e, named(40)).unwrap();
    for r in [
        s.validate(&named(41)).map(|_| ()),
        s.prepare_item(&e, named(41)).map(|_| ()),
        s.annotate(&e, named(41)).map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(StoreError::LimitExceeded {
                    what: "encoded annotation",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert_eq!(s.item_hash(&e).unwrap(), Some(h));
    assert_eq!(s.get(&e).unwrap(), Some(named(40)));
}

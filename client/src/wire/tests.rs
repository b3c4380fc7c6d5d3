use serde_json::json;

use super::*;

fn example_register() -> serde_json::Value {
    json!({
        "id": "hexad:1",
        "graph": {
            "properties": {"name": {"text": "Ada"}, "born": {"int": 1815}},
            "edges": [{"predicate": "knows", "target": "hexad:2", "properties": {"since": {"float": 1833.5}}}]
        },
        "vector": {"collection": "docs", "values": [0.1, 0.2, 0.3]},
        "tensor": {"shape": [2, 2], "dtype": "f32", "data": [1, 2.5, 3, 4]},
        "semantic": {
            "types": ["https://schema.org/Person"],
            "properties": {"https://schema.org/name": {"text": "Ada"}, "homepage": {"iri": "https://ada.example"}, "blob": {"bytes": "AAEC"}}
        }
    })
}

#[test]
fn register_request_round_trips_through_json() {
    let v = example_register();
    let r: RegisterRequest = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(r.id.as_str(), "hexad:1");
    assert_eq!(r.graph.properties["born"], Value::Int(1815));
    assert_eq!(
        r.semantic.properties["blob"],
        Value::Bytes(Base64Bytes(vec![0, 1, 2]))
    );
    let back = serde_json::to_value(&r).unwrap();
    let again: RegisterRequest = serde_json::from_value(back).unwrap();
    assert_eq!(again, r);
    let (_, update) = r.into_update();
    update.check().unwrap();
    assert_eq!(
        update.tensor.typed().unwrap(),
        TensorData::F32(vec![1.0, 2.5, 3.0, 4.0])
    );
}

#[test]
fn unknown_fields_and_bad_ids_are_refused() {
    let mut v = example_register();
    v["grpah"] = json!({});
    assert!(serde_json::from_value::<RegisterRequest>(v).is_err());
    let mut v = example_register();
    v["id"] = json!("has space");
    assert!(serde_json::from_value::<RegisterRequest>(v).is_err());
    let mut v = example_register();
    v["graph"]["properties"]["x"] = json!({"int": 1, "text": "a"});
    assert!(serde_json::from_value::<RegisterRequest>(v).is_err());
    let mut v = example_register();
    v["graph"]["properties"]["x"] = json!(5);
    assert!(serde_json::from_value::<RegisterRequest>(v).is_err());
}

#[test]
fn tensor_elements_are_checked_against_the_dtype() {
    let t = |dtype: &str, shape: serde_json::Value, data: serde_json::Value| -> TensorPayload {
        serde_json::from_value(json!({"shape": shape, "dtype": dtype, "data": data})).unwrap()
    };
    assert_eq!(
        t("u8", json!([3]), json!([0, 255, 7])).typed().unwrap(),
        TensorData::U8(vec![0, 255, 7])
    );
    assert_eq!(
        t("bool", json!([]), json!([true])).typed().unwrap(),
        TensorData::Bool(vec![true])
    );
    assert_eq!(
        t("i64", json!([1]), json!([i64::MIN])).typed().unwrap(),
        TensorData::I64(vec![i64::MIN])
    );
    for (dtype, shape, data) in [
        ("u8", json!([1]), json!([256])),
        ("i32", json!([1]), json!([1.5])),
        ("i32", json!([1]), json!([3_000_000_000_i64])),
        ("f32", json!([1]), json!([1e300])),
        ("f64", json!([1]), json!([true])),
        ("bool", json!([1]), json!([1])),
        ("f32", json!([2, 2]), json!([1, 2, 3])),
        ("f32", json!([0]), json!([1])),
        ("f32", json!([u64::MAX, 2]), json!([])),
    ] {
        let p = t(dtype, shape.clone(), data.clone());
        assert!(p.typed().is_err(), "{dtype} {shape} {data}");
    }
    for data in [
        TensorData::F64(vec![0.5, -1.0]),
        TensorData::I32(vec![-3, 4]),
        TensorData::Bool(vec![false, true]),
    ] {
        let p = TensorPayload::from_typed(vec![2], &data);
        let back: TensorPayload =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.typed().unwrap(), data);
    }
}

#[test]
fn error_codes_serialise_as_their_names_with_one_status_each() {
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        let back: ErrorCode = serde_json::from_value(json!(code.as_str())).unwrap();
        assert_eq!(back, code);
        assert!((400..600).contains(&code.status()));
        assert_eq!(code.is_retryable(), code.status() == 503, "{code}");
    }
    let body = ErrorBody::new(ErrorCode::NotFound, "no entity \"a\"");
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"code": "not_found", "message": "no entity \"a\""})
    );
    assert!(serde_json::from_value::<ErrorBody>(json!({"code": "nope", "message": ""})).is_err());
}

/// The admin API's codes keep the wire names and statuses it answered with before they joined
/// `ErrorCode` (docs/api.md, Errors).
#[test]
fn admin_codes_keep_their_names_and_statuses() {
    let table = [
        ("not_leader", 421),
        ("not_committed", 503),
        ("invalid", 409),
        ("refused", 409),
        ("bad_name", 400),
        ("unknown_node", 404),
        ("tree", 500),
        ("snapshot_failed", 500),
        ("bad_actor", 400),
        ("unknown_actor", 404),
        ("raw_proposals_disabled", 403),
        ("bad_cbor", 400),
        ("legacy_command", 400),
        ("too_many", 400),
        ("proposer_failed", 500),
        ("unknown_path", 404),
        ("not_running", 409),
        ("child_running", 409),
        ("restart_failed", 500),
        ("terminate_failed", 500),
        ("delete_failed", 500),
        ("drift_check_failed", 503),
        ("rebalance_failed", 503),
        ("forward_failed", 500),
        ("member_failed", 502),
        ("member_unreachable", 502),
    ];
    for (name, status) in table {
        let code: ErrorCode = serde_json::from_value(json!(name)).unwrap();
        assert!(ErrorCode::ALL.contains(&code), "{name}");
        assert_eq!(code.status(), status, "{name}");
    }
}

#[test]
fn queries_take_their_defaults() {
    let q: GraphNeighboursRequest = serde_json::from_value(json!({"id": "a"})).unwrap();
    assert_eq!(q.direction, Direction::Out);
    assert_eq!(q.predicate, None);
    let q: SemanticByTypeRequest =
        serde_json::from_value(json!({"type": "https://schema.org/Thing"})).unwrap();
    assert!(q.include_subtypes);
    let q: VectorSearchRequest =
        serde_json::from_value(json!({"collection": "docs", "vector": [1.0], "k": 3})).unwrap();
    assert!(!q.exact);
    let v: Violation = serde_json::from_value(
        json!({"kind": "missing_required", "type_iri": "https://schema.org/Person", "property": "name"}),
    )
    .unwrap();
    assert!(matches!(v, Violation::MissingRequired { .. }));
    let s: TensorSliceRequest =
        serde_json::from_value(json!({"id": "a", "ranges": [[0, 2], [1, 3]]})).unwrap();
    assert_eq!(s.ranges, vec![[0, 2], [1, 3]]);
}

#[test]
fn hex_fields_must_have_the_exact_length() {
    assert!(serde_json::from_value::<ClusterKeyResponse>(json!({"public_key": "00"})).is_err());
    let k: ClusterKeyResponse =
        serde_json::from_value(json!({"public_key": "AB".repeat(32)})).unwrap();
    assert_eq!(k.public_key.0, [0xab; 32]);
    assert_eq!(
        serde_json::to_value(&k).unwrap(),
        json!({"public_key": "ab".repeat(32)})
    );
}

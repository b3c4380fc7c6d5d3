#![allow(clippy::single_range_in_vec_init)]

use proptest::prelude::*;

use super::*;
use crate::limits::Limits;
use crate::testutil::{check_digests, id, temp_db};

fn store_with(chunk_bytes: usize) -> (tempfile::TempDir, Database, TensorStore) {
    let (dir, db) = temp_db();
    let limits = Limits {
        tensor_chunk_bytes: chunk_bytes,
        ..Limits::default()
    };
    let t = TensorStore::open(&db, &limits).unwrap();
    (dir, db, t)
}

fn t(shape: &[u64], data: TensorData) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        data,
    }
}

#[test]
fn every_dtype_round_trips() {
    let (_d, _db, mut s) = store_with(2);
    let cases = [
        TensorData::F32(vec![1.5, f32::NAN, -0.0, f32::INFINITY, 2.0, 3.0]),
        TensorData::F64(vec![1.5, -2.25, 0.0, 1e300, 2.0, 3.0]),
        TensorData::I32(vec![1, -2, i32::MAX, i32::MIN, 0, 7]),
        TensorData::I64(vec![1, -2, i64::MAX, i64::MIN, 0, 7]),
        TensorData::U8(vec![0, 1, 2, 255, 4, 5]),
        TensorData::Bool(vec![true, false, true, true, false, false]),
    ];
    for (i, data) in cases.into_iter().enumerate() {
        let e = id(&format!("t{i}"));
        let tensor = t(&[2, 3], data);
        s.put(&e, &tensor).unwrap();
        let back = s.get(&e).unwrap().unwrap();
        // Compare bytes: NaN != NaN.
        assert_eq!(back.shape, tensor.shape);
        assert_eq!(back.data.to_le_bytes(), tensor.data.to_le_bytes());
        assert!(s.meta(&e).unwrap().unwrap().chunks > 1);
    }
    let scalar = t(&[], TensorData::F64(vec![4.0]));
    s.put(&id("s"), &scalar).unwrap();
    assert_eq!(s.get(&id("s")).unwrap().unwrap(), scalar);
    check_digests(&s);
}

#[test]
fn bad_shapes_and_limits_are_typed_errors() {
    let (_d, _db, mut s) = store_with(64);
    let e = id("e");
    assert!(matches!(
        s.put(&e, &t(&[2, 3], TensorData::U8(vec![0; 5]))),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.put(&e, &t(&[2, 0], TensorData::U8(vec![]))),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.put(&e, &t(&[1; 9], TensorData::U8(vec![0]))),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert!(matches!(
        s.put(&e, &t(&[u64::MAX, u64::MAX], TensorData::U8(vec![]))),
        Err(StoreError::LimitExceeded { .. })
    ));
    s.put(&e, &t(&[2, 2], TensorData::I32(vec![1, 2, 3, 4])))
        .unwrap();
    assert!(matches!(
        s.slice(&e, &[0..1]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.slice(&e, &[0..1, 1..1]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.slice(&e, &[0..3, 0..1]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.reduce(&e, ReduceOp::Sum, 2),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.slice(&id("x"), &[0..1]),
        Err(StoreError::NotFound { .. })
    ));
    let big = t(&[2], TensorData::I64(vec![i64::MAX, 1]));
    s.put(&e, &big).unwrap();
    assert!(matches!(
        s.reduce(&e, ReduceOp::Sum, 0),
        Err(StoreError::Overflow(_))
    ));
}

#[test]
fn slicing_reads_only_the_chunks_it_needs() {
    // 100 x 100 f64 with 800-byte chunks: halving gives 7 x 13 elements (728 bytes) per chunk.
    let (_d, _db, mut s) = store_with(800);
    let e = id("big");
    let data: Vec<f64> = (0..10_000).map(f64::from).collect();
    s.put(&e, &t(&[100, 100], TensorData::F64(data))).unwrap();
    let m = s.meta(&e).unwrap().unwrap();
    assert_eq!(m.chunk_shape, vec![7, 13]);
    let grid = layout::grid(&m.shape, &m.chunk_shape);
    assert_eq!(m.chunks, grid.iter().product::<u64>());
    let before = s.chunk_reads();
    let one = s.slice(&e, &[0..5, 0..5]).unwrap();
    assert_eq!(s.chunk_reads() - before, 1);
    assert_eq!(
        one.data,
        TensorData::F64(
            (0..5)
                .flat_map(|r| (0..5).map(move |c| f64::from(r * 100 + c)))
                .collect()
        )
    );
    let before = s.chunk_reads();
    // Rows 5..9 span row-chunks 0 and 1, columns 10..15 span column-chunks 0 and 1.
    s.slice(&e, &[5..9, 10..15]).unwrap();
    assert_eq!(s.chunk_reads() - before, 4);
    let before = s.chunk_reads();
    s.get(&e).unwrap();
    assert_eq!(s.chunk_reads() - before, m.chunks);
}

#[test]
fn nan_propagates_through_reductions() {
    let (_d, _db, mut s) = store_with(64);
    let e = id("n");
    s.put(
        &e,
        &t(&[2, 2], TensorData::F32(vec![1.0, f32::NAN, 3.0, 4.0])),
    )
    .unwrap();
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Min, ReduceOp::Max] {
        let r = s.reduce(&e, op, 1).unwrap();
        let v: Vec<f64> = match r.data {
            TensorData::F64(v) => v,
            TensorData::F32(v) => v.into_iter().map(f64::from).collect(),
            other => panic!("{other:?}"),
        };
        assert!(v[0].is_nan(), "{op:?}");
        assert!(!v[1].is_nan(), "{op:?}");
    }
    s.put(&e, &t(&[3], TensorData::Bool(vec![true, false, true])))
        .unwrap();
    assert_eq!(
        s.reduce(&e, ReduceOp::Sum, 0).unwrap().data,
        TensorData::I64(vec![2])
    );
    assert_eq!(
        s.reduce(&e, ReduceOp::Min, 0).unwrap().data,
        TensorData::Bool(vec![false])
    );
    assert_eq!(
        s.reduce(&e, ReduceOp::Max, 0).unwrap().shape,
        Vec::<u64>::new()
    );
}

#[test]
fn export_import_and_replace() {
    let (_d, _db, mut s) = store_with(32);
    let e = id("e");
    s.put(&e, &t(&[10, 10], TensorData::I32((0..100).collect())))
        .unwrap();
    let h = s.put(&e, &t(&[3], TensorData::I32(vec![1, 2, 3]))).unwrap();
    assert_eq!(s.meta(&e).unwrap().unwrap().chunks, 1);
    let ex =
        ExportedItem::from_bytes(&s.export_item(&e).unwrap().unwrap().to_bytes().unwrap()).unwrap();
    assert_eq!(ex.hash, h);
    let (_d2, _db2, mut s2) = store_with(4);
    assert_eq!(s2.import_item(&ex).unwrap(), h);
    assert_eq!(s2.verify_item(&e).unwrap(), Some(h));
    assert_eq!(s2.get(&e).unwrap(), s.get(&e).unwrap());
    assert!(s2.remove_item(&e).unwrap());
    assert_eq!(s2.item_hash(&e).unwrap(), None);
    check_digests(&s);
    check_digests(&s2);
}

/// Naive reference: row-major offset of a coordinate.
fn offset(shape: &[u64], c: &[u64]) -> usize {
    c.iter().zip(shape).fold(0u64, |a, (x, s)| a * s + x) as usize
}

/// For a reduction along `axis`: one lane per output element (row-major over the other axes), each
/// the row-major offsets of the input elements it folds, in order along `axis`.
fn lane_offsets(shape: &[u64], axis: usize) -> Vec<Vec<usize>> {
    let mut rest = shape.to_vec();
    rest.remove(axis);
    all_coords(&rest)
        .iter()
        .map(|c| {
            (0..shape[axis])
                .map(|k| {
                    let mut full = c.clone();
                    full.insert(axis, k);
                    offset(shape, &full)
                })
                .collect()
        })
        .collect()
}

fn all_coords(shape: &[u64]) -> Vec<Vec<u64>> {
    let mut out = vec![vec![]];
    for s in shape {
        out = out
            .into_iter()
            .flat_map(|c| (0..*s).map(move |x| [c.clone(), vec![x]].concat()))
            .collect();
    }
    out
}

/// Shape, data, one (start, end) per axis, chunk bytes.
type Case = (Vec<u64>, Vec<i32>, Vec<(u64, u64)>, usize);

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(1u64..6, 0..4).prop_flat_map(|shape| {
        let n: u64 = shape.iter().product();
        let ranges: Vec<_> = shape
            .iter()
            .map(|&s| (0..s).prop_flat_map(move |a| (Just(a), a + 1..=s)))
            .collect();
        (
            Just(shape),
            prop::collection::vec(-1000i32..1000, n as usize),
            ranges,
            1usize..80,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Slices and reductions equal a naive row-major model, for any chunk size.
    #[test]
    fn slices_and_reductions_equal_a_naive_model((shape, data, ranges, chunk) in case()) {
        let (_d, _db, mut s) = store_with(chunk);
        let e = id("p");
        s.put(&e, &t(&shape, TensorData::I32(data.clone()))).unwrap();
        let r: Vec<Range<u64>> = ranges.iter().map(|(a, b)| *a..*b).collect();
        let got = s.slice(&e, &r).unwrap();
        let out_shape: Vec<u64> = r.iter().map(|x| x.end - x.start).collect();
        let want: Vec<i32> = all_coords(&out_shape)
            .iter()
            .map(|c| {
                let abs: Vec<u64> = c.iter().zip(&r).map(|(x, r)| x + r.start).collect();
                data[offset(&shape, &abs)]
            })
            .collect();
        prop_assert_eq!(got, t(&out_shape, TensorData::I32(want)));
        for axis in 0..shape.len() {
            let mut rs = shape.clone();
            rs.remove(axis);
            let lanes: Vec<Vec<i32>> = lane_offsets(&shape, axis)
                .iter()
                .map(|l| l.iter().map(|&i| data[i]).collect())
                .collect();
            let sum = s.reduce(&e, ReduceOp::Sum, axis).unwrap();
            prop_assert_eq!(sum, t(&rs, TensorData::I64(lanes.iter().map(|l| l.iter().map(|x| i64::from(*x)).sum()).collect())));
            let min = s.reduce(&e, ReduceOp::Min, axis).unwrap();
            prop_assert_eq!(min, t(&rs, TensorData::I32(lanes.iter().map(|l| *l.iter().min().unwrap()).collect())));
            let max = s.reduce(&e, ReduceOp::Max, axis).unwrap();
            prop_assert_eq!(max, t(&rs, TensorData::I32(lanes.iter().map(|l| *l.iter().max().unwrap()).collect())));
            let mean = s.reduce(&e, ReduceOp::Mean, axis).unwrap();
            prop_assert_eq!(mean, t(&rs, TensorData::F64(lanes.iter().map(|l| l.iter().map(|x| f64::from(*x)).sum::<f64>() / l.len() as f64).collect())));
        }
        prop_assert_eq!(s.get(&e).unwrap().unwrap(), t(&shape, TensorData::I32(data)));
    }

    /// Arbitrary bytes as an export never panic the importer.
    #[test]
    fn arbitrary_exports_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (_d, _db, mut s) = store_with(64);
        if let Ok(ex) = ExportedItem::from_bytes(&bytes) {
            let _ = s.import_item(&ex);
        }
    }
}

/// Equal, with NaN equal to NaN (whatever its payload) and otherwise bit for bit: float sums must
/// round exactly as a sequential loop does.
fn same(a: &TensorData, b: &TensorData) -> bool {
    let f = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    match (a, b) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| f(f64::from(*p), f64::from(*q)))
        }
        (TensorData::F64(x), TensorData::F64(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| f(*p, *q))
        }
        _ => a == b,
    }
}

/// The model's answer for one reduction of `data` (any dtype) along `axis`: `None` for an overflow.
fn model_reduce(shape: &[u64], data: &TensorData, op: ReduceOp, axis: usize) -> Option<Tensor> {
    let mut rs = shape.to_vec();
    rs.remove(axis);
    let lanes = lane_offsets(shape, axis);
    let n = shape[axis] as f64;
    let floats = |v: &dyn Fn(usize) -> f64| -> Vec<f64> {
        lanes
            .iter()
            .map(|l| match op {
                ReduceOp::Sum => l.iter().fold(0.0, |a, i| a + v(*i)),
                ReduceOp::Mean => l.iter().fold(0.0, |a, i| a + v(*i)) / n,
                ReduceOp::Min | ReduceOp::Max => {
                    if l.iter().any(|i| v(*i).is_nan()) {
                        f64::NAN
                    } else if op == ReduceOp::Min {
                        l.iter().map(|i| v(*i)).fold(f64::INFINITY, f64::min)
                    } else {
                        l.iter().map(|i| v(*i)).fold(f64::NEG_INFINITY, f64::max)
                    }
                }
            })
            .collect()
    };
    let ints = |v: &dyn Fn(usize) -> i128| -> Option<Vec<i128>> {
        lanes
            .iter()
            .map(|l| {
                let xs = l.iter().map(|i| v(*i));
                match op {
                    ReduceOp::Sum => {
                        let s: i128 = xs.sum();
                        i64::try_from(s).ok().map(i128::from)
                    }
                    ReduceOp::Min => xs.min(),
                    ReduceOp::Max => xs.max(),
                    ReduceOp::Mean => unreachable!("means are floats"),
                }
            })
            .collect()
    };
    let out = match (data, op) {
        (TensorData::F32(d), ReduceOp::Min | ReduceOp::Max) => TensorData::F32(
            floats(&|i| f64::from(d[i]))
                .into_iter()
                .map(|x| x as f32)
                .collect(),
        ),
        (TensorData::F32(d), _) => TensorData::F64(floats(&|i| f64::from(d[i]))),
        (TensorData::F64(d), _) => TensorData::F64(floats(&|i| d[i])),
        (_, ReduceOp::Mean) => {
            let v = |i: usize| -> f64 {
                match data {
                    TensorData::I64(d) => d[i] as f64,
                    TensorData::U8(d) => f64::from(d[i]),
                    TensorData::Bool(d) => f64::from(u8::from(d[i])),
                    _ => unreachable!(),
                }
            };
            // An exact integer sum, then one division (the engine sums in i128).
            TensorData::F64(
                lanes
                    .iter()
                    .map(|l| l.iter().map(|i| v(*i) as i128).sum::<i128>() as f64 / n)
                    .collect(),
            )
        }
        (TensorData::I64(d), _) => {
            let r = ints(&|i| i128::from(d[i]))?;
            TensorData::I64(r.into_iter().map(|x| x as i64).collect())
        }
        (TensorData::U8(d), ReduceOp::Sum) => TensorData::I64(
            ints(&|i| i128::from(d[i]))?
                .into_iter()
                .map(|x| x as i64)
                .collect(),
        ),
        (TensorData::U8(d), _) => TensorData::U8(
            ints(&|i| i128::from(d[i]))?
                .into_iter()
                .map(|x| x as u8)
                .collect(),
        ),
        (TensorData::Bool(d), ReduceOp::Sum) => TensorData::I64(
            ints(&|i| i128::from(u8::from(d[i])))?
                .into_iter()
                .map(|x| x as i64)
                .collect(),
        ),
        (TensorData::Bool(d), _) => TensorData::Bool(
            ints(&|i| i128::from(u8::from(d[i])))?
                .into_iter()
                .map(|x| x != 0)
                .collect(),
        ),
        (TensorData::I32(_), _) => unreachable!("covered by the i32 property test"),
    };
    Some(t(&rs, out))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Reductions of f32 and f64 (with NaN: it propagates), large i64 (sums may overflow: a typed
    /// error), u8 and bool tensors equal a naive model, for any chunk size.
    #[test]
    fn reductions_of_every_dtype_equal_a_naive_model(
        (shape, raw, _ranges, chunk) in case(),
        dtype in prop_oneof![Just(DType::F32), Just(DType::F64), Just(DType::I64), Just(DType::U8), Just(DType::Bool)],
        nan_at in proptest::option::of(0usize..200),
    ) {
        let (_d, _db, mut s) = store_with(chunk);
        let nan = |i: usize| nan_at == Some(i);
        let data = match dtype {
            // Not integers, so rounding (and therefore summation order) matters.
            DType::F32 => TensorData::F32(raw.iter().enumerate().map(|(i, x)| if nan(i) { f32::NAN } else { *x as f32 / 7.0 }).collect()),
            DType::F64 => TensorData::F64(raw.iter().enumerate().map(|(i, x)| if nan(i) { f64::NAN } else { f64::from(*x) / 3.0 }).collect()),
            // Near i64::MAX: two of them overflow an i64 sum.
            DType::I64 => TensorData::I64(raw.iter().map(|x| i64::from(*x) * 9_000_000_000_000_000).collect()),
            DType::U8 => TensorData::U8(raw.iter().map(|x| x.rem_euclid(256) as u8).collect()),
            _ => TensorData::Bool(raw.iter().map(|x| x % 2 != 0).collect()),
        };
        let e = id("p");
        s.put(&e, &t(&shape, data.clone())).unwrap();
        for axis in 0..shape.len() {
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Min, ReduceOp::Max] {
                let got = s.reduce(&e, op, axis);
                match model_reduce(&shape, &data, op, axis) {
                    Some(want) => {
                        let got = got.unwrap();
                        prop_assert_eq!(&got.shape, &want.shape);
                        prop_assert!(same(&got.data, &want.data), "{:?} axis {}: {:?} vs {:?}", op, axis, got, want);
                    }
                    None => prop_assert!(matches!(got, Err(StoreError::Overflow(_))), "{:?}", got),
                }
            }
        }
    }
}

#[test]
fn the_byte_limit_counts_bytes_not_elements() {
    let (_d, db) = temp_db();
    let limits = Limits {
        max_tensor_bytes: 64,
        ..Limits::default()
    };
    let mut s = TensorStore::open(&db, &limits).unwrap();
    let e = id("e");
    // 8 f64 = 64 bytes: at the limit. 9 f64 = 72 bytes, though 9 elements are far under
    // max_tensor_elements.
    s.put(&e, &t(&[8], TensorData::F64(vec![1.0; 8]))).unwrap();
    let over = t(&[9], TensorData::F64(vec![1.0; 9]));
    assert!(matches!(
        s.put(&e, &over),
        Err(StoreError::LimitExceeded {
            what: "tensor bytes",
            limit: 64,
            actual: 72
        })
    ));
    assert!(matches!(
        s.prepare_item(&e, &over),
        Err(StoreError::LimitExceeded { .. })
    ));
    s.put(&e, &t(&[8, 8], TensorData::U8(vec![1; 64]))).unwrap();
    assert!(matches!(
        s.put(&e, &t(&[65], TensorData::U8(vec![1; 65]))),
        Err(StoreError::LimitExceeded { actual: 65, .. })
    ));
    // An import from a replica with a larger limit is refused the same way, and writes nothing.
    let (_d2, db2) = temp_db();
    let mut big = TensorStore::open(&db2, &Limits::default()).unwrap();
    big.put(&e, &over).unwrap();
    let ex = big.export_item(&e).unwrap().unwrap();
    let before = s.item_hash(&e).unwrap();
    assert!(matches!(
        s.import_item(&ex),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert_eq!(s.item_hash(&e).unwrap(), before);
}

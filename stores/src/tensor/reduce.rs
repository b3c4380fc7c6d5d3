//! Reductions along one axis.
//!
//! Output shape: the input shape without `axis`. Output dtype: `Sum` gives `F64` for float inputs
//! and `I64` for integer and bool inputs (bool sums count `true`s; an `I64` sum that overflows is an
//! error, never a wrap); `Mean` always gives `F64`; `Min`/`Max` keep the input dtype (for bool: all /
//! any).
//!
//! **NaN policy.** NaN propagates: a lane containing a NaN sums, averages, mins and maxes to NaN
//! (like NumPy's `sum`/`min`/`max`, unlike `nanmin`). Infinities follow IEEE arithmetic
//! (`+inf + -inf` is NaN). Tensors may store NaN and infinities; only vectors refuse them.

use serde::{Deserialize, Serialize};

use super::dtype::{Tensor, TensorData};
use crate::error::{Result, StoreError};

/// A reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

fn lanes(shape: &[u64], axis: usize) -> (usize, usize, usize) {
    let p = |s: &[u64]| s.iter().product::<u64>() as usize;
    (
        p(&shape[..axis]),
        shape[axis] as usize,
        p(&shape[axis + 1..]),
    )
}

/// Folds every lane along the axis: `out[o * inner + i] = fold(v[o, 0..n, i])`.
fn fold<T: Copy, A: Copy>(
    v: &[T],
    (outer, n, inner): (usize, usize, usize),
    init: A,
    f: impl Fn(A, T) -> A,
) -> Vec<A> {
    let mut out = vec![init; outer * inner];
    for o in 0..outer {
        for k in 0..n {
            let base = (o * n + k) * inner;
            for i in 0..inner {
                let a = &mut out[o * inner + i];
                *a = f(*a, v[base + i]);
            }
        }
    }
    out
}

fn fmin(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() {
        f64::NAN
    } else {
        a.min(x)
    }
}
fn fmax(a: f64, x: f64) -> f64 {
    if a.is_nan() || x.is_nan() {
        f64::NAN
    } else {
        a.max(x)
    }
}

#[allow(clippy::cast_precision_loss)]
fn floats(v: &[f64], l: (usize, usize, usize), op: ReduceOp) -> Vec<f64> {
    match op {
        ReduceOp::Sum => fold(v, l, 0.0, |a, x| a + x),
        ReduceOp::Mean => fold(v, l, 0.0, |a, x| a + x)
            .into_iter()
            .map(|s| s / l.1 as f64)
            .collect(),
        ReduceOp::Min => fold(v, l, f64::INFINITY, fmin),
        ReduceOp::Max => fold(v, l, f64::NEG_INFINITY, fmax),
    }
}

/// Integer reductions through i128 (exact), then narrowed with a check.
#[allow(clippy::cast_precision_loss)]
fn ints(v: &[i128], l: (usize, usize, usize), op: ReduceOp) -> Result<IntOut> {
    Ok(match op {
        ReduceOp::Sum => IntOut::Sum(
            fold(v, l, 0i128, |a, x| a + x)
                .into_iter()
                .map(|s| {
                    i64::try_from(s)
                        .map_err(|_| StoreError::Overflow(format!("sum {s} does not fit in i64")))
                })
                .collect::<Result<_>>()?,
        ),
        ReduceOp::Mean => IntOut::Mean(
            fold(v, l, 0i128, |a, x| a + x)
                .into_iter()
                .map(|s| s as f64 / l.1 as f64)
                .collect(),
        ),
        ReduceOp::Min => IntOut::Same(fold(v, l, i128::MAX, i128::min)),
        ReduceOp::Max => IntOut::Same(fold(v, l, i128::MIN, i128::max)),
    })
}

enum IntOut {
    Sum(Vec<i64>),
    Mean(Vec<f64>),
    Same(Vec<i128>),
}

/// Reduces `t` along `axis` (checked by the caller to be `< rank`).
pub(crate) fn reduce(t: &Tensor, op: ReduceOp, axis: usize) -> Result<Tensor> {
    let l = lanes(&t.shape, axis);
    let mut shape = t.shape.clone();
    shape.remove(axis);
    #[allow(clippy::cast_possible_truncation)]
    let data = match &t.data {
        TensorData::F32(v) => {
            let w: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
            let r = floats(&w, l, op);
            match op {
                // Exact: the min/max of f32s is one of them.
                ReduceOp::Min | ReduceOp::Max => {
                    TensorData::F32(r.into_iter().map(|x| x as f32).collect())
                }
                ReduceOp::Sum | ReduceOp::Mean => TensorData::F64(r),
            }
        }
        TensorData::F64(v) => TensorData::F64(floats(v, l, op)),
        TensorData::I32(v) => {
            let w: Vec<i128> = v.iter().map(|x| i128::from(*x)).collect();
            match ints(&w, l, op)? {
                IntOut::Sum(s) => TensorData::I64(s),
                IntOut::Mean(m) => TensorData::F64(m),
                IntOut::Same(s) => TensorData::I32(s.into_iter().map(|x| x as i32).collect()),
            }
        }
        TensorData::I64(v) => {
            let w: Vec<i128> = v.iter().map(|x| i128::from(*x)).collect();
            match ints(&w, l, op)? {
                IntOut::Sum(s) => TensorData::I64(s),
                IntOut::Mean(m) => TensorData::F64(m),
                IntOut::Same(s) => TensorData::I64(s.into_iter().map(|x| x as i64).collect()),
            }
        }
        TensorData::U8(v) => {
            let w: Vec<i128> = v.iter().map(|x| i128::from(*x)).collect();
            match ints(&w, l, op)? {
                IntOut::Sum(s) => TensorData::I64(s),
                IntOut::Mean(m) => TensorData::F64(m),
                IntOut::Same(s) => TensorData::U8(s.into_iter().map(|x| x as u8).collect()),
            }
        }
        TensorData::Bool(v) => {
            let w: Vec<i128> = v.iter().map(|x| i128::from(*x)).collect();
            match ints(&w, l, op)? {
                IntOut::Sum(s) => TensorData::I64(s),
                IntOut::Mean(m) => TensorData::F64(m),
                IntOut::Same(s) => TensorData::Bool(s.into_iter().map(|x| x != 0).collect()),
            }
        }
    };
    Ok(Tensor { shape, data })
}

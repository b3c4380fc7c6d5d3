//! Reductions along one axis, folded chunk by chunk: a reduction holds one accumulator per output
//! element and one stored chunk at a time, never the whole tensor.
//!
//! Output shape: the input shape without `axis`. Output dtype: `Sum` gives `F64` for float inputs
//! and `I64` for integer and bool inputs (bool sums count `true`s; an `I64` sum that overflows is an
//! error, never a wrap); `Mean` always gives `F64`; `Min`/`Max` keep the input dtype (for bool: all /
//! any).
//!
//! **NaN policy.** NaN propagates: a lane containing a NaN sums, averages, mins and maxes to NaN
//! (like NumPy's `sum`/`min`/`max`, unlike `nanmin`). Infinities follow IEEE arithmetic
//! (`+inf + -inf` is NaN). Tensors may store NaN and infinities; only vectors refuse them.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::TensorMeta;
use super::dtype::{DType, Tensor, TensorData};
use super::layout;
use crate::error::{Result, StoreError, corrupt};

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

/// The running state of a reduction: one accumulator per output element, in the widest type the
/// input needs (f64 for floats; i128 for integer sums, exact for any i64 input; i64 for integer
/// min/max).
enum Acc {
    Float(Vec<f64>),
    IntSum(Vec<i128>),
    IntMinMax(Vec<i64>),
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

/// Row-major strides of the output for each input axis (0 for the reduced axis): the output index
/// of an input element is the dot product of its coordinate with these.
fn output_strides(shape: &[u64], axis: usize) -> Vec<u64> {
    let mut out = vec![0u64; shape.len()];
    let mut s = 1u64;
    for d in (0..shape.len()).rev() {
        if d != axis {
            out[d] = s;
            s *= shape[d];
        }
    }
    out
}

/// Folds one chunk (row-major over `bx`, elements of `size` bytes) into `acc`.
fn fold_chunk<A: Copy, T>(
    buf: &[u8],
    bx: &[Range<u64>],
    ostride: &[u64],
    size: usize,
    acc: &mut [A],
    decode: impl Fn(&[u8]) -> Result<T>,
    f: impl Fn(A, T) -> A,
) -> Result<()> {
    let rank = bx.len();
    let last = &bx[rank - 1];
    let run = (last.end - last.start) as usize;
    let mut row = 0usize;
    let mut err = None;
    layout::for_each_coord(&bx[..rank - 1], |c| {
        if err.is_some() {
            return;
        }
        let base: u64 =
            c.iter().zip(ostride).map(|(x, s)| x * s).sum::<u64>() + last.start * ostride[rank - 1];
        let elems = &buf[row * run * size..(row + 1) * run * size];
        for (j, e) in elems.chunks_exact(size).enumerate() {
            let o = (base + j as u64 * ostride[rank - 1]) as usize;
            match decode(e) {
                Ok(x) => acc[o] = f(acc[o], x),
                Err(e) => {
                    err = Some(e);
                    return;
                }
            }
        }
        row += 1;
    });
    err.map_or(Ok(()), Err)
}

macro_rules! le {
    ($t:ty, $n:expr) => {
        |b: &[u8]| -> Result<$t> {
            let mut a = [0u8; $n];
            a.copy_from_slice(b);
            Ok(<$t>::from_le_bytes(a))
        }
    };
}

/// Folds one chunk into the accumulators for `dtype` and `op`.
fn fold_any(
    acc: &mut Acc,
    dtype: DType,
    op: ReduceOp,
    buf: &[u8],
    bx: &[Range<u64>],
    ostride: &[u64],
) -> Result<()> {
    let size = dtype.size();
    let bool_byte = |b: &[u8]| -> Result<i64> {
        match b[0] {
            x @ (0 | 1) => Ok(i64::from(x)),
            x => Err(corrupt(
                "stored tensor",
                format!("bool element byte {x} is neither 0 nor 1"),
            )),
        }
    };
    let float = |a: f64, x: f64| match op {
        ReduceOp::Sum | ReduceOp::Mean => a + x,
        ReduceOp::Min => fmin(a, x),
        ReduceOp::Max => fmax(a, x),
    };
    let minmax = |a: i64, x: i64| {
        if op == ReduceOp::Min {
            a.min(x)
        } else {
            a.max(x)
        }
    };
    let sum = |a: i128, x: i64| a + i128::from(x);
    let f32le = le!(f32, 4);
    let i32le = le!(i32, 4);
    match (acc, dtype) {
        (Acc::Float(a), DType::F32) => fold_chunk(
            buf,
            bx,
            ostride,
            size,
            a,
            |b| f32le(b).map(f64::from),
            float,
        ),
        (Acc::Float(a), DType::F64) => fold_chunk(buf, bx, ostride, size, a, le!(f64, 8), float),
        (Acc::IntSum(a), DType::I32) => {
            fold_chunk(buf, bx, ostride, size, a, |b| i32le(b).map(i64::from), sum)
        }
        (Acc::IntSum(a), DType::I64) => fold_chunk(buf, bx, ostride, size, a, le!(i64, 8), sum),
        (Acc::IntSum(a), DType::U8) => {
            fold_chunk(buf, bx, ostride, size, a, |b| Ok(i64::from(b[0])), sum)
        }
        (Acc::IntSum(a), DType::Bool) => fold_chunk(buf, bx, ostride, size, a, bool_byte, sum),
        (Acc::IntMinMax(a), DType::I32) => fold_chunk(
            buf,
            bx,
            ostride,
            size,
            a,
            |b| i32le(b).map(i64::from),
            minmax,
        ),
        (Acc::IntMinMax(a), DType::I64) => {
            fold_chunk(buf, bx, ostride, size, a, le!(i64, 8), minmax)
        }
        (Acc::IntMinMax(a), DType::U8) => {
            fold_chunk(buf, bx, ostride, size, a, |b| Ok(i64::from(b[0])), minmax)
        }
        (Acc::IntMinMax(a), DType::Bool) => {
            fold_chunk(buf, bx, ostride, size, a, bool_byte, minmax)
        }
        // `reduce` pairs every dtype with its accumulator kind.
        _ => Err(StoreError::InvalidInput(format!(
            "internal: no accumulator for {dtype:?}"
        ))),
    }
}

/// Reduces the tensor described by `meta` along `axis` (checked by the caller to be `< rank`),
/// reading one chunk at a time through `read(chunk coordinate)`: memory is the output's
/// accumulators plus one chunk, never the whole tensor. Chunks are visited in row-major grid
/// order, so every lane is folded in increasing index order along the axis — the same order, and
/// for floats the same rounding, as a sequential loop over the whole tensor.
pub(crate) fn reduce(
    meta: &TensorMeta,
    op: ReduceOp,
    axis: usize,
    mut read: impl FnMut(&[u64]) -> Result<Vec<u8>>,
) -> Result<Tensor> {
    let shape = &meta.shape;
    let mut out_shape = shape.clone();
    let n = out_shape.remove(axis);
    let out_len = out_shape.iter().product::<u64>() as usize;
    let ostride = output_strides(shape, axis);
    let float = matches!(meta.dtype, DType::F32 | DType::F64);
    let mut acc = match op {
        _ if float => Acc::Float(vec![
            match op {
                ReduceOp::Sum | ReduceOp::Mean => 0.0,
                ReduceOp::Min => f64::INFINITY,
                ReduceOp::Max => f64::NEG_INFINITY,
            };
            out_len
        ]),
        ReduceOp::Sum | ReduceOp::Mean => Acc::IntSum(vec![0; out_len]),
        ReduceOp::Min => Acc::IntMinMax(vec![i64::MAX; out_len]),
        ReduceOp::Max => Acc::IntMinMax(vec![i64::MIN; out_len]),
    };
    let grid = layout::grid(shape, &meta.chunk_shape);
    let gr: Vec<Range<u64>> = grid.iter().map(|g| 0..*g).collect();
    let mut err = None;
    layout::for_each_coord(&gr, |c| {
        if err.is_some() {
            return;
        }
        let bx = layout::chunk_box(c, &meta.chunk_shape, shape);
        if let Err(e) =
            read(c).and_then(|buf| fold_any(&mut acc, meta.dtype, op, &buf, &bx, &ostride))
        {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = n as f64;
    #[allow(clippy::cast_possible_truncation)]
    let data = match (acc, meta.dtype, op) {
        (Acc::Float(a), _, ReduceOp::Mean) => {
            TensorData::F64(a.into_iter().map(|s| s / n).collect())
        }
        // Exact: the min/max of f32s is one of them.
        (Acc::Float(a), DType::F32, ReduceOp::Min | ReduceOp::Max) => {
            TensorData::F32(a.into_iter().map(|x| x as f32).collect())
        }
        (Acc::Float(a), _, _) => TensorData::F64(a),
        (Acc::IntSum(a), _, ReduceOp::Mean) =>
        {
            #[allow(clippy::cast_precision_loss)]
            TensorData::F64(a.into_iter().map(|s| s as f64 / n).collect())
        }
        (Acc::IntSum(a), _, _) => TensorData::I64(
            a.into_iter()
                .map(|s| {
                    i64::try_from(s)
                        .map_err(|_| StoreError::Overflow(format!("sum {s} does not fit in i64")))
                })
                .collect::<Result<_>>()?,
        ),
        // Every lane has at least one element (extents are ≥ 1), so each value is one of the
        // inputs and fits the input type.
        (Acc::IntMinMax(a), DType::I32, _) => {
            TensorData::I32(a.into_iter().map(|x| x as i32).collect())
        }
        (Acc::IntMinMax(a), DType::U8, _) => {
            TensorData::U8(a.into_iter().map(|x| x as u8).collect())
        }
        (Acc::IntMinMax(a), DType::Bool, _) => {
            TensorData::Bool(a.into_iter().map(|x| x != 0).collect())
        }
        (Acc::IntMinMax(a), _, _) => TensorData::I64(a),
    };
    Ok(Tensor {
        shape: out_shape,
        data,
    })
}

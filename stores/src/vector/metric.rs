//! Distance metrics. Every search reports a *distance* (smaller is closer):
//! cosine → `1 − cos(a, b)` (in `[0, 2]`), L2 → Euclidean distance, dot → `−(a · b)`.

use serde::{Deserialize, Serialize};

/// How a collection compares vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Cosine distance, `1 − cos`. Zero vectors are refused.
    Cosine,
    /// Euclidean distance.
    L2,
    /// Negated inner product (maximum inner product search).
    Dot,
}

impl Metric {
    /// The vector as the index stores it: unit length for cosine, unchanged otherwise.
    pub(crate) fn prepare(self, v: &[f32]) -> Vec<f32> {
        match self {
            Self::Cosine => {
                // The norm and the division in f64: an f32 squared norm of a tiny (or subnormal)
                // vector loses most of its bits, and the "unit" vector would then be off by
                // parts per million (a distance of -3e-6 to itself).
                let n = squared_norm_f64(v).sqrt();
                #[allow(clippy::cast_possible_truncation)]
                v.iter().map(|x| (f64::from(*x) / n) as f32).collect()
            }
            Self::L2 | Self::Dot => v.to_vec(),
        }
    }

    /// Internal distance between two *prepared* vectors; monotone in the reported distance
    /// (squared for L2, to skip the square root in the hot loop).
    #[inline]
    pub(crate) fn raw(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::Cosine => 1.0 - dot(a, b),
            Self::L2 => l2sq(a, b),
            Self::Dot => -dot(a, b),
        }
    }

    /// Converts an internal distance to the reported one.
    #[inline]
    pub(crate) fn report(self, raw: f32) -> f32 {
        match self {
            Self::L2 => raw.max(0.0).sqrt(),
            Self::Cosine | Self::Dot => raw,
        }
    }
}

/// The squared Euclidean norm, accumulated in f64 (never overflows or underflows for f32 input of
/// any dimension the limits allow). Used where vectors are checked and normalised, not in the hot
/// search loop.
pub(crate) fn squared_norm_f64(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum()
}

/// Dot product written in 8 independent lanes so the compiler vectorises it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Squared Euclidean distance, 8 lanes.
#[inline]
pub(crate) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

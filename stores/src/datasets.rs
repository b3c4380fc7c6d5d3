//! Seeded synthetic vector data sets for the recall/QPS measurements.
//!
//! One definition shared by `examples/vector_recall.rs` (our HNSW) and the standalone
//! `stores/bench/ann-compare` (other ANN crates), so both measure on bit-identical data: the same
//! seed gives the same vectors here, in the example and in the comparison.
//!
//! * [`DataSet::Latent`] (L2): a random linear map of a 16-d Gaussian latent plus small noise — low
//!   intrinsic dimension, like real embeddings;
//! * [`DataSet::Clustered`] (cosine): 100 Gaussian clusters with wide isotropic noise inside each;
//! * [`DataSet::Uniform`] (L2): coordinates uniform in `[-1, 1]` — the worst case, nearest
//!   neighbours barely nearer than the rest.

use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::vector::Metric;

/// A synthetic data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSet {
    /// Low intrinsic dimension (16-d latent), L2.
    Latent,
    /// 100 wide Gaussian clusters, cosine.
    Clustered,
    /// Uniform in `[-1, 1]^dim`, L2.
    Uniform,
}

impl DataSet {
    /// All three, in the order the tables list them.
    pub const ALL: [DataSet; 3] = [DataSet::Latent, DataSet::Clustered, DataSet::Uniform];

    /// Parses `latent`, `clustered` or `uniform`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "latent" => Some(Self::Latent),
            "clustered" => Some(Self::Clustered),
            "uniform" => Some(Self::Uniform),
            _ => None,
        }
    }

    /// The lower-case name used on the command line and in the tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Latent => "latent",
            Self::Clustered => "clustered",
            Self::Uniform => "uniform",
        }
    }

    /// The metric the measurements use for this data set.
    #[must_use]
    pub fn metric(self) -> Metric {
        match self {
            Self::Latent | Self::Uniform => Metric::L2,
            Self::Clustered => Metric::Cosine,
        }
    }

    /// `n` vectors of dimension `dim` from `seed`. The base vectors of a measurement use `seed`, the
    /// queries `seed + 1`.
    #[must_use]
    pub fn generate(self, seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match self {
            Self::Uniform => (0..n)
                .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
                .collect(),
            Self::Latent => {
                // A fixed random linear map of a 16-d Gaussian latent, plus small isotropic noise.
                let map: Vec<Vec<f32>> = (0..dim)
                    .map(|_| (0..16).map(|_| gaussian(&mut rng)).collect())
                    .collect();
                (0..n)
                    .map(|_| {
                        let z: Vec<f32> = (0..16).map(|_| gaussian(&mut rng)).collect();
                        map.iter()
                            .map(|row| {
                                row.iter().zip(&z).map(|(a, b)| a * b).sum::<f32>()
                                    + 0.1 * gaussian(&mut rng)
                            })
                            .collect()
                    })
                    .collect()
            }
            Self::Clustered => {
                let centres: Vec<Vec<f32>> = (0..100)
                    .map(|_| (0..dim).map(|_| gaussian(&mut rng)).collect())
                    .collect();
                (0..n)
                    .map(|_| {
                        let c = &centres[rng.random_range(0..centres.len())];
                        c.iter().map(|x| x + 0.35 * gaussian(&mut rng)).collect()
                    })
                    .collect()
            }
        }
    }
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller.
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random_range(0.0..1.0);
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// The exact `k` nearest base vectors (their indices, closest first, ties by index) of every query,
/// by brute force in `f64` — the ground truth of a recall measurement that does not go through our
/// own engine. Cosine compares directions (zero vectors are never nearest).
#[must_use]
pub fn exact_knn(
    base: &[Vec<f32>],
    queries: &[Vec<f32>],
    k: usize,
    metric: Metric,
) -> Vec<Vec<usize>> {
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let base_norms: Vec<f64> = base.iter().map(|v| norm(v)).collect();
    queries
        .iter()
        .map(|q| {
            let qn = norm(q);
            let mut d: Vec<(f64, usize)> = base
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let dot: f64 = q
                        .iter()
                        .zip(b)
                        .map(|(x, y)| f64::from(*x) * f64::from(*y))
                        .sum();
                    let dist = match metric {
                        Metric::L2 => q
                            .iter()
                            .zip(b)
                            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                            .sum(),
                        Metric::Cosine if base_norms[i] > 0.0 && qn > 0.0 => {
                            1.0 - dot / (qn * base_norms[i])
                        }
                        Metric::Cosine => f64::INFINITY,
                        Metric::Dot => -dot,
                    };
                    (dist, i)
                })
                .collect();
            let by = |a: &(f64, usize), b: &(f64, usize)| -> Ordering {
                a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
            };
            if d.len() > k && k > 0 {
                d.select_nth_unstable_by(k - 1, by);
            }
            d.truncate(k);
            d.sort_by(by);
            d.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// CPU time of the calling thread in nanoseconds (the scheduler's run time), 0 where
/// `/proc/thread-self/schedstat` is unreadable. Measurements report queries per CPU-second with it:
/// what one core delivers, even on a machine shared with other work, where wall time also counts
/// waiting for a core.
#[must_use]
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A memory figure of this process in KiB from `/proc/self/status` (`field` such as `"VmRSS:"` or
/// `"VmHWM:"`), 0 where it is unreadable.
#[must_use]
pub fn process_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_seeded_and_shaped() {
        for ds in DataSet::ALL {
            let a = ds.generate(3, 20, 8);
            assert_eq!(a, ds.generate(3, 20, 8), "{ds:?} is not deterministic");
            assert_ne!(a, ds.generate(4, 20, 8), "{ds:?} ignores the seed");
            assert_eq!(a.len(), 20);
            assert!(
                a.iter()
                    .all(|v| v.len() == 8 && v.iter().all(|x| x.is_finite()))
            );
            assert_eq!(DataSet::from_name(ds.name()), Some(ds));
        }
    }

    #[test]
    fn exact_knn_orders_by_distance_then_index() {
        let base = vec![
            vec![0.0, 0.0],
            vec![3.0, 0.0],
            vec![1.0, 0.0],
            vec![-1.0, 0.0],
        ];
        let q = vec![vec![0.9, 0.0]];
        assert_eq!(exact_knn(&base, &q, 3, Metric::L2), vec![vec![2, 0, 3]]);
        // Cosine: indices 1 and 2 point the same way (tie broken by index); 0 has no direction.
        assert_eq!(
            exact_knn(&base, &q, 4, Metric::Cosine),
            vec![vec![1, 2, 3, 0]]
        );
        assert_eq!(exact_knn(&base, &q, 1, Metric::Dot), vec![vec![1]]);
    }
}

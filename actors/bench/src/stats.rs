//! Latency summaries from exact samples: sorted, nearest-rank percentiles.

use std::time::Duration;

use serde::Serialize;

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of ascending `sorted` samples; `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Count, p50, p99 and max of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Sorts `samples` and summarises them; `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Some(Self {
            count: samples.len(),
            p50_ms: ms(percentile(samples, 50.0)?),
            p99_ms: ms(percentile(samples, 99.0)?),
            max_ms: ms(*samples.last()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&s, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&s, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&s, 0.1), Some(Duration::from_millis(1)));
        let one = ms(&[7]);
        assert_eq!(percentile(&one, 50.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&one, 99.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = ms(&[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        let mut sorted = ten.clone();
        sorted.sort();
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(10)));
    }

    #[test]
    fn summary_sorts_its_input() {
        let mut s = ms(&[30, 10, 20]);
        let sum = Summary::of(&mut s).unwrap();
        assert_eq!(sum.count, 3);
        assert_eq!(sum.p50_ms, 20.0);
        assert_eq!(sum.p99_ms, 30.0);
        assert_eq!(sum.max_ms, 30.0);
        assert!(Summary::of(&mut []).is_none());
    }
}

//! Where a verisim commit's time goes, stage by stage: the nodes' latency histograms (`/metrics`)
//! read before and after a level, each stage's mean over the level from the change of its `_sum`
//! and `_count`, next to the client's mean round trip (proposers ÷ commits/s, Little's law for a
//! closed loop).
//!
//! The stages nest: the client's round trip holds the HTTP request on the node it reaches, which
//! holds the leader's commit (its consensus actor taking the proposal until the entry is applied
//! there), which holds the leader's group-commit wait, its log fsync and the followers' (the
//! majority's) round trip. What one stage holds beyond the next is the cost of the hops between.

use std::collections::BTreeMap;

use serde::Serialize;

use super::http::Http;

/// The histograms a stage is read from.
const HTTP: &str = "verisim_http_request_duration_seconds";
const COMMIT: &str = "verisim_raft_commit_seconds";
const QUEUE: &str = "verisim_raft_proposal_queue_seconds";
const FSYNC: &str = "verisim_raft_log_fsync_seconds";
const APPLY: &str = "verisim_raft_apply_seconds";

/// `_sum` and `_count` of every histogram series of one node's `/metrics`, by series name (with
/// its labels).
#[derive(Debug, Clone, Default)]
pub struct Scrape(BTreeMap<String, (f64, f64)>);

impl Scrape {
    /// Reads `base_url/metrics`.
    pub fn read(http: &Http, base_url: &str) -> Result<Self, String> {
        let r = http.get(&format!("{base_url}/metrics"))?;
        match r.body.as_str() {
            Some(text) if r.ok() => Ok(Self::parse(text)),
            _ => Err(format!("GET /metrics: {}", r.status)),
        }
    }

    /// The `_sum` and `_count` lines of a Prometheus text exposition.
    pub fn parse(text: &str) -> Self {
        let mut series: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (base, labels) = match name.find('{') {
                Some(i) => name.split_at(i),
                None => (name, ""),
            };
            if let Some(b) = base.strip_suffix("_sum") {
                series.entry(format!("{b}{labels}")).or_default().0 = value;
            } else if let Some(b) = base.strip_suffix("_count") {
                series.entry(format!("{b}{labels}")).or_default().1 = value;
            }
        }
        Self(series)
    }

    /// Sum and count of every series of histogram `name` (all its labels), added up.
    pub fn total(&self, name: &str) -> (f64, f64) {
        self.0
            .iter()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
            .fold((0.0, 0.0), |(s, c), (_, (ds, dc))| (s + ds, c + dc))
    }
}

/// The mean of histogram `name` between two scrapes of a node, in ms, and how many observations
/// it covers.
fn mean_ms(before: &Scrape, after: &Scrape, name: &str) -> Option<Mean> {
    let (s0, c0) = before.total(name);
    let (s1, c1) = after.total(name);
    let count = c1 - c0;
    (count > 0.0).then(|| Mean {
        ms: (s1 - s0) / count * 1000.0,
        count: count as u64,
    })
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Mean {
    pub ms: f64,
    pub count: u64,
}

/// One level's stage means (ms).
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    pub proposers: usize,
    /// The client's mean round trip.
    pub client_ms: f64,
    /// The HTTP request on the node the client reaches.
    pub http: Option<Mean>,
    /// The leader's commit: proposal taken by its consensus actor → applied there.
    pub commit: Option<Mean>,
    /// The leader's group-commit wait (the core taking it → the flush that writes and sends it).
    pub queue: Option<Mean>,
    /// One fsync of the leader's log.
    pub leader_fsync: Option<Mean>,
    /// One fsync of a follower's log (both followers).
    pub follower_fsync: Option<Mean>,
    /// Applying one batch of committed entries on the leader.
    pub apply: Option<Mean>,
}

impl Stages {
    /// The stages between two scrapes of every node (`target`: the node the client reached;
    /// `leader`: the leader), for a level that ran `proposers` at `commits_per_s`.
    pub fn between(
        proposers: usize,
        commits_per_s: f64,
        before: &BTreeMap<u64, Scrape>,
        after: &BTreeMap<u64, Scrape>,
        target: u64,
        leader: u64,
    ) -> Self {
        let at = |node: u64, name: &str| mean_ms(before.get(&node)?, after.get(&node)?, name);
        let follower_fsync = {
            let (mut sum, mut count) = (0.0, 0u64);
            for (&node, b) in before.iter().filter(|&(&n, _)| n != leader) {
                if let Some(m) = after.get(&node).and_then(|a| mean_ms(b, a, FSYNC)) {
                    sum += m.ms * m.count as f64;
                    count += m.count;
                }
            }
            (count > 0).then(|| Mean {
                ms: sum / count as f64,
                count,
            })
        };
        Self {
            proposers,
            client_ms: if commits_per_s > 0.0 {
                proposers as f64 / commits_per_s * 1000.0
            } else {
                f64::NAN
            },
            http: at(target, HTTP),
            commit: at(leader, COMMIT),
            queue: at(leader, QUEUE),
            leader_fsync: at(leader, FSYNC),
            follower_fsync,
            apply: at(leader, APPLY),
        }
    }

    /// One markdown table row.
    pub fn row(&self, system: &str) -> String {
        let m = |x: &Option<Mean>| x.map_or("–".into(), |m| format!("{:.3}", m.ms));
        let gap = |outer: Option<f64>, inner: &Option<Mean>| match (outer, inner) {
            (Some(o), Some(i)) => format!("{:.3}", o - i.ms),
            _ => "–".into(),
        };
        format!(
            "| {} | {system} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            self.proposers,
            self.client_ms,
            gap(Some(self.client_ms), &self.http),
            m(&self.http),
            gap(self.http.map(|h| h.ms), &self.commit),
            m(&self.commit),
            m(&self.queue),
            m(&self.leader_fsync),
            m(&self.follower_fsync),
            m(&self.apply),
        )
    }

    pub const HEADER: &'static str = "| proposers | system | client round trip | client + loopback (round trip − HTTP) | HTTP request on the node | node → leader's consensus actor and back (HTTP − commit) | leader's commit | of which: group-commit wait | leader fsync | follower fsync | apply (per batch) |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_counts_are_read_per_series_and_added_over_labels() {
        let before = Scrape::parse(
            "# HELP x\nverisim_raft_commit_seconds_sum 1.0\nverisim_raft_commit_seconds_count 10\n\
             verisim_http_request_duration_seconds_sum{route=\"a\"} 2.0\n\
             verisim_http_request_duration_seconds_count{route=\"a\"} 4\n\
             verisim_raft_commit_seconds_bucket{le=\"0.001\"} 3\n",
        );
        let after = Scrape::parse(
            "verisim_raft_commit_seconds_sum 1.5\nverisim_raft_commit_seconds_count 20\n\
             verisim_http_request_duration_seconds_sum{route=\"a\"} 2.0\n\
             verisim_http_request_duration_seconds_count{route=\"a\"} 4\n\
             verisim_http_request_duration_seconds_sum{route=\"b\"} 0.3\n\
             verisim_http_request_duration_seconds_count{route=\"b\"} 6\n",
        );
        let commit = mean_ms(&before, &after, COMMIT).unwrap();
        assert_eq!(commit.count, 10);
        assert!((commit.ms - 50.0).abs() < 1e-9, "{commit:?}");
        // Route "b" appeared between the scrapes: its 6 observations of 0.05 s each.
        let http = mean_ms(&before, &after, HTTP).unwrap();
        assert_eq!(http.count, 6);
        assert!((http.ms - 50.0).abs() < 1e-9, "{http:?}");
        assert!(mean_ms(&before, &after, FSYNC).is_none(), "no observations");
    }
}

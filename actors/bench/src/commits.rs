//! `verisim-bench commits`: commits/s and latency of a 3-node cluster at several numbers of
//! concurrent proposers, and of a 3-member etcd under the same load when etcd is installed.
//!
//! Every proposer sends to the leader (for both systems), over its own keep-alive connection: a
//! verisim proposal is `PUT /admin/nodes/b<p>` (a `SetNode` registry command, answered once
//! applied), an etcd one `POST /v3/kv/put` of key `b<p>`.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::args::EtcdMode;
use super::cluster::VerisimCluster;
use super::etcd::{self, EtcdCluster};
use super::load::{LevelResult, run_level};

#[derive(Debug, Clone, clap::Args)]
pub struct CommitsArgs {
    /// Concurrency levels (closed-loop proposers), comma-separated.
    #[arg(long, default_value = "1,16,64,256", value_parser = super::args::parse_levels)]
    pub proposers: std::vec::Vec<usize>,
    /// Measured time per level (after a 1 s warm-up).
    #[arg(long, default_value = "10s", value_parser = super::args::parse_duration)]
    pub duration: Duration,
    /// `auto` (etcd on the PATH), `off`, or the path of an etcd binary.
    #[arg(long, default_value = "auto", value_parser = super::args::parse_etcd)]
    pub etcd: EtcdMode,
}

#[derive(Debug, Serialize)]
pub struct CommitsReport {
    pub verisim: Vec<LevelResult>,
    pub etcd: Option<Vec<LevelResult>>,
    pub etcd_version: Option<String>,
    pub etcd_skipped: Option<String>,
}

pub fn run(args: &CommitsArgs) -> Result<CommitsReport, String> {
    let verisim = {
        let c = VerisimCluster::start(3, &[])?;
        let (leader, term) = c.wait_leader(Duration::from_secs(30))?;
        eprintln!("verisim: 3 nodes up, n{leader} leads at term {term}; proposing to the leader");
        let url = c.node(leader).url("/admin/nodes/")?;
        let mut out = Vec::new();
        for &n in &args.proposers {
            let url = url.clone();
            let r = run_level(n, args.duration, move |http, p, i| {
                let body =
                    json!({"cluster_addr": format!("127.0.0.1:{i}"), "http_addr": "127.0.0.1:1"});
                let r = http.put_json(&format!("{url}b{p}"), &body)?;
                if r.ok() {
                    Ok(())
                } else {
                    Err(format!("{} {}", r.status, r.body))
                }
            });
            eprintln!("verisim {n:>4} proposers: {:.0} commits/s", r.commits_per_s);
            out.push(r);
        }
        if let Some(l) = c.leader().filter(|&(l, _)| l != leader) {
            eprintln!("warning: leadership moved to n{} during the run", l.0);
        }
        out
    };
    let (etcd, etcd_version, etcd_skipped) = match args.etcd.binary() {
        Err(why) => (None, None, Some(why)),
        Ok(bin) => {
            let e = EtcdCluster::start(&bin, 3)?;
            let leader = e.wait_leader(Duration::from_secs(30))?;
            eprintln!(
                "{}: 3 members up; proposing to the leader {leader}",
                e.version
            );
            let mut out = Vec::new();
            for &n in &args.proposers {
                let leader = leader.clone();
                let r = run_level(n, args.duration, move |http, p, i| {
                    etcd::put(http, &leader, &format!("b{p}"), &format!("127.0.0.1:{i}"))
                });
                eprintln!("etcd    {n:>4} proposers: {:.0} puts/s", r.commits_per_s);
                out.push(r);
            }
            (Some(out), Some(e.version.clone()), None)
        }
    };
    Ok(CommitsReport {
        verisim,
        etcd,
        etcd_version,
        etcd_skipped,
    })
}

impl CommitsReport {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if let Some(why) = &self.etcd_skipped {
            s.push_str(&format!(
                "**ETCD COMPARISON SKIPPED: {why}. The table below has verisim only.**\n\n"
            ));
        }
        s.push_str("| proposers | verisim commits/s | p50 | p99 | errors | etcd puts/s | p50 | p99 | errors | verisim/etcd |\n");
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for (i, v) in self.verisim.iter().enumerate() {
            let e = self.etcd.as_ref().and_then(|e| e.get(i));
            let lat = |r: &LevelResult| match &r.latency {
                Some(l) => format!("{:.2} ms | {:.2} ms", l.p50_ms, l.p99_ms),
                None => "– | –".into(),
            };
            let etcd_cols = match e {
                Some(e) => format!("{:.0} | {} | {}", e.commits_per_s, lat(e), e.errors),
                None => "– | – | – | –".into(),
            };
            let ratio = match e {
                Some(e) if e.commits_per_s > 0.0 => {
                    format!("{:.2}×", v.commits_per_s / e.commits_per_s)
                }
                _ => "–".into(),
            };
            s.push_str(&format!(
                "| {} | {:.0} | {} | {} | {} | {} |\n",
                v.proposers,
                v.commits_per_s,
                lat(v),
                v.errors,
                etcd_cols,
                ratio
            ));
        }
        for r in self.verisim.iter().chain(self.etcd.iter().flatten()) {
            if let Some(e) = &r.first_error {
                s.push_str(&format!(
                    "\nfirst error at {} proposers: {e}\n",
                    r.proposers
                ));
            }
        }
        s
    }
}

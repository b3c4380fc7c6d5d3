//! `verisim-bench log-memory`: a node's resident memory before and after a snapshot lets it drop
//! its log (issue 5: "the memory is actually freed"). Automatic snapshots are off, N entries of
//! about `payload` bytes are written (`SetNode` commands over 64 names, so the registry itself
//! stays small and the memory that moves is the log's), then `POST /admin/snapshot` compacts it.

use std::time::{Duration, Instant};

use serde::Serialize;
use verisim::registry::{Command, NodeInfo, NodeName, Proposal};

use super::children::{rss_bytes, wait_for};
use super::cluster::VerisimCluster;
use super::http::Http;
use super::raw::{now_ms, propose_all};

#[derive(Debug, Clone, clap::Args)]
pub struct LogMemoryArgs {
    #[arg(long, default_value_t = 200_000)]
    pub entries: u64,
    /// Bytes of payload per entry (the node's `cluster_addr` string).
    #[arg(long, default_value_t = 1024)]
    pub payload: usize,
}

#[derive(Debug, Serialize)]
pub struct LogMemoryReport {
    pub entries: u64,
    pub payload: usize,
    pub write_s: f64,
    /// The log as the node reports it before the snapshot.
    pub log_entries_before: u64,
    pub log_bytes_before: u64,
    pub log_entries_after: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub rss_after_2s: u64,
    pub snapshot_index: u64,
    pub compaction_s: f64,
}

const BATCH: u64 = 1000;

pub fn run(args: &LogMemoryArgs) -> Result<LogMemoryReport, String> {
    let conf = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = conf.path().join("node.toml");
    std::fs::write(
        &path,
        "[snapshot]\nmax_entries = 1000000000000\nmax_bytes = 1000000000000000\nmax_age_s = 0\n",
    )
    .map_err(|e| e.to_string())?;
    let c = VerisimCluster::start(
        1,
        &[
            "--config".into(),
            path.display().to_string(),
            "--admin-raw-proposals".into(),
        ],
    )?;
    let r = measure(&c, args);
    r.map_err(|e| format!("{e}\n{}", c.logs()))
}

fn log_stats(c: &VerisimCluster) -> Option<(u64, u64, u64)> {
    let s = c.consensus(1)?;
    Some((
        s["log"]["entries"].as_u64()?,
        s["log"]["bytes"].as_u64()?,
        s["log"]["first_index"].as_u64()?,
    ))
}

fn measure(c: &VerisimCluster, args: &LogMemoryArgs) -> Result<LogMemoryReport, String> {
    let http = Http::new(Duration::from_secs(120));
    let base = c.node(1).url("")?;
    let pid = c.node(1).pid().ok_or("n1 is not running")?;
    let payload = "x".repeat(args.payload);
    let names: Vec<NodeName> = (0..64)
        .map(|i| NodeName::new(format!("m{i}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut written = 0;
    while written < args.entries {
        let n = BATCH.min(args.entries - written);
        let at_ms = now_ms();
        let batch: Vec<Proposal> = (written..written + n)
            .map(|i| Proposal {
                at_ms,
                command: Command::SetNode {
                    node: names[(i % 64) as usize].clone(),
                    info: NodeInfo {
                        cluster_addr: payload.clone(),
                        http_addr: format!("127.0.0.1:{}", i % 65536),
                    },
                },
            })
            .collect();
        propose_all(&http, &base, &batch)?;
        written += n;
        if written % 50_000 == 0 {
            eprintln!("{written} entries written");
        }
    }
    let write_s = started.elapsed().as_secs_f64();
    let (log_entries_before, log_bytes_before, _) = log_stats(c).ok_or("no status")?;
    let rss_before = rss_bytes(pid)?;
    eprintln!(
        "log: {log_entries_before} entries, {:.1} MiB; RSS {:.1} MiB; taking a snapshot",
        log_bytes_before as f64 / 1048576.0,
        rss_before as f64 / 1048576.0
    );
    let started = Instant::now();
    let r = http.post_empty(&format!("{base}/admin/snapshot"))?;
    if !r.ok() {
        return Err(format!("POST /admin/snapshot: {} {}", r.status, r.body));
    }
    let snapshot_index = r.body["snapshot_index"]
        .as_u64()
        .ok_or("no snapshot_index")?;
    // Compacted: the log starts past everything but the trailing window below the snapshot.
    let log_entries_after = wait_for("the log to be compacted", Duration::from_secs(120), || {
        let (entries, _, first) = log_stats(c)?;
        (first > 1 && entries < log_entries_before / 2).then_some(entries)
    })?;
    let compaction_s = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes(pid)?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_after_2s = rss_bytes(pid)?;
    Ok(LogMemoryReport {
        entries: args.entries,
        payload: args.payload,
        write_s,
        log_entries_before,
        log_bytes_before,
        log_entries_after,
        rss_before,
        rss_after,
        rss_after_2s,
        snapshot_index,
        compaction_s,
    })
}

impl LogMemoryReport {
    pub fn markdown(&self) -> String {
        let mib = |b: u64| b as f64 / 1048576.0;
        let freed = self.rss_before.saturating_sub(self.rss_after_2s);
        format!(
            "| entries × payload | log before | log after | RSS before | RSS after compaction | RSS 2 s later | freed | freed / log bytes |\n\
             |---|---|---|---|---|---|---|---|\n\
             | {} × {} B | {} entries, {:.1} MiB | {} entries | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} % |\n\n\
             written in {:.1} s; snapshot at index {} and compaction took {:.2} s\n",
            self.entries,
            self.payload,
            self.log_entries_before,
            mib(self.log_bytes_before),
            self.log_entries_after,
            mib(self.rss_before),
            mib(self.rss_after),
            mib(self.rss_after_2s),
            mib(freed),
            100.0 * freed as f64 / self.log_bytes_before.max(1) as f64,
            self.write_s,
            self.snapshot_index,
            self.compaction_s,
        )
    }
}

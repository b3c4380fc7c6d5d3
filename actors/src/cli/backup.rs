//! `verisim backup --node URL --out FILE`, `verisim backup verify FILE` and
//! `verisim restore --from FILE --data-dir DIR --id N` (docs/operations.md, "Backup and restore").
//!
//! `backup` streams `GET /admin/backup` into `FILE.partial` next to `FILE`, fsyncs it, verifies
//! the whole file from disk (every checksum, as `verify` does), then renames it into place and
//! fsyncs the directory: `FILE` only ever exists complete and verified. Errors start with a stable
//! code (`backup_corrupt: ...`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use super::AdminAuth;
use crate::backup::{BackupError, BackupSummary, RestoreTarget, verify_file};
use crate::node::NodeConfig;

/// `verisim backup`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub op: Option<BackupOp>,
    /// The node's HTTP address (any member: it answers from a read barrier).
    #[arg(long = "node", env = "VERISIM_NODE", required = true)]
    pub node: Option<String>,
    /// The backup file to write (atomically: it appears only complete and verified).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminAuth,
}

/// `verisim backup <op>`.
#[derive(Subcommand, Debug)]
pub enum BackupOp {
    /// Check a backup file offline: every frame, every payload's content hash and the
    /// registry's record of it, the trailer's counts and BLAKE3.
    Verify {
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `verisim restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long = "from")]
    pub from: PathBuf,
    /// The new node's config file (its `[stores]` section must match the source cluster's:
    /// vector collections, schema).
    #[arg(long, env = "VERISIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// The new node's id (the only voter of the new cluster).
    #[arg(long, env = "VERISIM_ID")]
    pub id: Option<u64>,
    /// The new node's data directory: must not exist, or be empty.
    #[arg(long, env = "VERISIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn coded(e: &BackupError) -> String {
    format!("{}: {e}", e.code())
}

fn summary_json(s: &BackupSummary) -> serde_json::Value {
    json!({
        "index": s.header.index,
        "term": s.header.term,
        "source_node": s.header.source_node,
        "source_voters": s.header.source_membership().map(|m| m.voters.into_iter().collect::<Vec<_>>()),
        "created_ms": s.header.created_ms,
        "entities": s.entities,
        "items": s.items,
        "bytes": s.bytes,
        "blake3": s.blake3,
    })
}

fn print_summary(what: &str, file: &Path, s: &BackupSummary, extra: serde_json::Value, json: bool) {
    if json {
        let mut v = summary_json(s);
        v["file"] = json!(file.display().to_string());
        if let (Some(v), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        println!("{v}");
    } else {
        println!(
            "{what} {}: index {} term {}, {} entities, {} items, {} bytes, blake3 {} {}",
            file.display(),
            s.header.index,
            s.header.term,
            s.entities,
            s.items,
            s.bytes,
            s.blake3,
            if extra.is_null() {
                String::new()
            } else {
                extra.to_string()
            }
        );
    }
}

/// Runs `verisim backup ...`.
///
/// # Errors
/// A message starting with a stable code.
pub fn run_backup(args: BackupArgs) -> Result<(), String> {
    match args.op {
        Some(BackupOp::Verify { file, json }) => {
            let started = Instant::now();
            let s = verify_file(&file).map_err(|e| coded(&e))?;
            let ms = started.elapsed().as_millis() as u64;
            print_summary("verified", &file, &s, json!({"verify_ms": ms}), json);
            Ok(())
        }
        None => {
            let (Some(node), Some(out)) = (args.node, args.out) else {
                return Err("usage: verisim backup --node URL --out FILE".into());
            };
            save(&node, &out, args.force, &args.admin, args.json)
        }
    }
}

fn save(node: &str, out: &Path, force: bool, admin: &AdminAuth, json: bool) -> Result<(), String> {
    if out.exists() && !force {
        return Err(format!(
            "restore_target: {} exists (--force replaces it)",
            out.display()
        ));
    }
    let token = admin.token()?;
    let started = Instant::now();
    let agent = agent()?;
    let url = format!("{}/admin/backup", node.trim_end_matches('/'));
    let mut req = agent.get(&url);
    if let Some(t) = &token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("unreachable: {url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        return Err(format!(
            "{}: {url} answered {status}: {}",
            v["code"].as_str().unwrap_or("http_error"),
            v["message"].as_str().unwrap_or(&text)
        ));
    }
    let partial = partial_path(out);
    let result = download(&mut resp, &url, &partial, out, started);
    match result {
        Ok((s, download_ms, verify_ms)) => {
            print_summary(
                "wrote",
                out,
                &s,
                json!({"download_ms": download_ms, "verify_ms": verify_ms}),
                json,
            );
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Streams the body into `partial`, fsyncs it, verifies it from disk, renames it to `out` and
/// fsyncs the directory; answers the summary and the download and verify times.
fn download(
    resp: &mut ureq::http::Response<ureq::Body>,
    url: &str,
    partial: &Path,
    out: &Path,
    started: Instant,
) -> Result<(BackupSummary, u64, u64), String> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(partial)
        .map_err(|e| format!("io: creating {}: {e}", partial.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut body = resp.body_mut().with_config().limit(u64::MAX).reader();
    io::copy(&mut body, &mut w)
        .map_err(|e| format!("io: the backup stream from {url} broke off: {e}"))?;
    let file = w
        .into_inner()
        .map_err(|e| format!("io: writing {}: {}", partial.display(), e.error()))?;
    file.sync_all()
        .map_err(|e| format!("io: fsyncing {}: {e}", partial.display()))?;
    drop(file);
    let download_ms = started.elapsed().as_millis() as u64;
    let verifying = Instant::now();
    let s = verify_file(partial).map_err(|e| coded(&e))?;
    let verify_ms = verifying.elapsed().as_millis() as u64;
    fs::rename(partial, out).map_err(|e| format!("io: renaming to {}: {e}", out.display()))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("io: fsyncing {}: {e}", dir.display()))?;
    Ok((s, download_ms, verify_ms))
}

/// The HTTP agent: no overall deadline (a backup takes as long as it takes), `https://` checked
/// against the authorities in `$VERISIM_CA_FILE` only, as every other command does.
fn agent() -> Result<ureq::Agent, String> {
    let env = super::client::CA_FILE_ENV;
    let mut roots = Vec::new();
    if let Some(path) = std::env::var_os(env) {
        let pem = fs::read(&path)
            .map_err(|e| format!("{env}: cannot read {}: {e}", Path::new(&path).display()))?;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c),
                Ok(_) => {}
                Err(e) => return Err(format!("{env}: the CA file does not parse: {e}")),
            }
        }
        if roots.is_empty() {
            return Err(format!("{env}: the CA file holds no certificate"));
        }
    }
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .build();
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .tls_config(tls)
        .build()
        .into())
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Runs `verisim restore ...`.
///
/// # Errors
/// A message starting with a stable code.
pub fn run_restore(args: RestoreArgs) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::from_file(path).map_err(|e| format!("config: {e}"))?,
        None => NodeConfig::default(),
    };
    if let Some(id) = args.id {
        config.id = id;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if config.id == 0 {
        return Err("restore_target: --id is required (the new cluster's first node)".into());
    }
    let target = RestoreTarget {
        id: config.id,
        data_dir: config.data_dir.clone(),
        raft_dir: config.raft_dir(),
        stores_dir: config.stores_dir(),
        stores: config.stores.clone(),
        snapshots_kept: config.snapshot.keep,
    };
    let report = crate::backup::restore(&args.from, &target).map_err(|e| coded(&e))?;
    print_summary(
        "restored",
        &args.from,
        &report.summary,
        json!({
            "data_dir": config.data_dir.display().to_string(),
            "id": config.id,
            "verify_ms": report.verify_ms,
            "write_ms": report.write_ms,
        }),
        args.json,
    );
    if !args.json {
        eprintln!(
            "start it as a new one-node cluster: verisim node --id {} --data-dir {} ... \
             (no --voters, no --join); then join more nodes with --join",
            config.id,
            config.data_dir.display()
        );
    }
    Ok(())
}

//! `verisim-bench ...`: benchmarks of real `verisim node` processes on loopback (fsync on). Each
//! prints a markdown table on stdout (progress on stderr), or JSON with `--json`. They are never
//! part of the test suite; docs/benchmarks.md records their results.
//!
//! A tool apart from the server: the `verisim` binary it starts is the one next to this one (built
//! by `cargo build --release -p verisim -p verisim-bench`), or `$VERISIM_BIN`.

mod args;
mod children;
mod cluster;
mod commits;
mod cpu;
mod drift;
mod etcd;
#[cfg(feature = "etcd-grpc")]
mod etcd_grpc;
mod failover;
mod fill;
mod http;
mod join;
mod load;
mod log_memory;
mod multiplex;
mod raw;
mod register;
mod register_fill;
mod stages;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "verisim-bench",
    version,
    about = "Benchmarks of real verisim node processes on loopback (docs/benchmarks.md)"
)]
pub struct BenchArgs {
    /// Print JSON instead of a markdown table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, Clone, Subcommand)]
enum Which {
    /// Commits/s and p50/p99 latency of a 3-node cluster at several concurrency levels, against a
    /// 3-member etcd when installed.
    Commits(commits::CommitsArgs),
    /// The drift checker on a 3-node cluster of N entities: a pass with no drift, and passes
    /// repairing 1 lost item, 1% lost items and a wiped replica.
    Drift(drift::DriftArgs),
    /// Leader `kill -9` → first commit by a new leader, over many trials.
    Failover(failover::FailoverArgs),
    /// A 4th node joining a 3-node cluster that holds N entities: install + catch-up time.
    Join(join::JoinArgs),
    /// A node's RSS before and after its log is compacted by a snapshot.
    LogMemory(log_memory::LogMemoryArgs),
    /// Signed registrations/s end to end over HTTP on a 3-node cluster (all four modalities).
    Register(register::RegisterArgs),
}

fn main() -> ExitCode {
    let args = BenchArgs::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("verisim-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verisim-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark on a blocking thread; Ctrl-C kills every child process and stops it.
async fn run(args: BenchArgs) -> Result<(), String> {
    let task = tokio::task::spawn_blocking(move || run_blocking(&args));
    tokio::pin!(task);
    tokio::select! {
        r = &mut task => r.map_err(|e| format!("the benchmark thread failed: {e}"))?,
        _ = tokio::signal::ctrl_c() => {
            children::interrupt_all();
            // The benchmark thread now fails fast; let it drop (and so reap and clean) what it owns.
            let _ = task.await;
            Err("interrupted".into())
        }
    }
}

fn run_blocking(args: &BenchArgs) -> Result<(), String> {
    let (md, json) = match &args.which {
        Which::Commits(a) => {
            let r = commits::run(a)?;
            (r.markdown(), to_json(&r))
        }
        Which::Drift(a) => {
            let r = drift::run(a)?;
            (r.markdown(), to_json(&r))
        }
        Which::Failover(a) => {
            let r = failover::run(a)?;
            (r.markdown(), to_json(&r))
        }
        Which::Join(a) => {
            let r = join::run(a)?;
            (r.markdown(), to_json(&r))
        }
        Which::LogMemory(a) => {
            let r = log_memory::run(a)?;
            (r.markdown(), to_json(&r))
        }
        Which::Register(a) => {
            let r = register::run(a)?;
            (r.markdown(), to_json(&r))
        }
    };
    if args.json {
        println!("{json}");
    } else {
        println!("{md}");
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

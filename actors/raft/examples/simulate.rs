//! Run the deterministic Raft simulator over many seeds, or replay one.
//!
//! ```text
//! cargo run -p verisim-raft --release --example simulate -- --seeds 100000 --start 0 --lincheck
//! cargo run -p verisim-raft --example simulate -- --seed 1234        # replay one, verbose
//! ```
//! Replays use the dev profile (opt-level 1 here), so the core's debug assertions and overflow
//! checks are on, as in the tests; batches in `--release` run about twice as fast without them
//! (a seed that fails there replays with them on). A panic in a seed (a debug assertion, an
//! overflow) is caught and reported as that seed's failure, and the batch goes on.
//! Options: `--seeds N` (default 1000), `--start S` (default 0), `--seed S` (one seed),
//! `--scenario NAME`, `--nodes N`, `--clients N`, `--fault-ms`, `--heal-ms`, `--quiesce-ms`,
//! `--bug-commit-previous-term`, `--bug-local-reads`, `--panic-at-ms T` (injected bugs and a
//! deliberate panic at virtual time T, for the tests; failures are then expected),
//! `--lincheck` (also check each client history for linearizability with `verisim-lincheck`, a
//! deterministic step budget per history; histories it does not decide are counted as undecided).
//! Exits non-zero if any seed fails; each failure prints its seed and the replay command.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use verisim_raft::sim::{self, FaultCounts, Linearizability, Scenario, SimOptions};

struct Args {
    start: u64,
    seeds: u64,
    single: Option<u64>,
    scenario: Option<Scenario>,
    nodes: Option<usize>,
    clients: Option<u32>,
    fault_ms: Option<u64>,
    heal_ms: Option<u64>,
    quiesce_ms: Option<u64>,
    bug: bool,
    local_reads: bool,
    lincheck: bool,
    panic_at_ms: Option<u64>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        start: 0,
        seeds: 1000,
        single: None,
        scenario: None,
        nodes: None,
        clients: None,
        fault_ms: None,
        heal_ms: None,
        quiesce_ms: None,
        bug: false,
        local_reads: false,
        lincheck: false,
        panic_at_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--start" => args.start = num(value()?)?,
            "--seeds" => args.seeds = num(value()?)?,
            "--seed" => args.single = Some(num(value()?)?),
            "--scenario" => {
                let name = value()?;
                args.scenario =
                    Some(Scenario::parse(&name).ok_or_else(|| format!("unknown scenario {name}"))?);
            }
            "--nodes" => args.nodes = Some(num(value()?)? as usize),
            "--clients" => args.clients = Some(num(value()?)? as u32),
            "--fault-ms" => args.fault_ms = Some(num(value()?)?),
            "--heal-ms" => args.heal_ms = Some(num(value()?)?),
            "--quiesce-ms" => args.quiesce_ms = Some(num(value()?)?),
            "--bug-commit-previous-term" => args.bug = true,
            "--bug-local-reads" => args.local_reads = true,
            "--lincheck" => args.lincheck = true,
            "--panic-at-ms" => args.panic_at_ms = Some(num(value()?)?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

fn options(args: &Args, seed: u64) -> SimOptions {
    let mut o = SimOptions::for_seed(seed);
    if let Some(s) = args.scenario {
        o.scenario = s;
    }
    if let Some(n) = args.nodes {
        o.nodes = n;
    }
    if let Some(c) = args.clients {
        o.clients = c;
    }
    if let Some(v) = args.fault_ms {
        o.fault_ms = v;
    }
    if let Some(v) = args.heal_ms {
        o.heal_ms = v;
    }
    if let Some(v) = args.quiesce_ms {
        o.quiesce_ms = v;
    }
    o.bug_commit_previous_term = args.bug;
    o.bug_local_reads = args.local_reads;
    o.lincheck = args.lincheck;
    o.panic_at_ms = args.panic_at_ms;
    o
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let (start, count) = match args.single {
        Some(s) => (s, 1),
        None => (args.start, args.seeds),
    };
    let began = Instant::now();
    let mut failures = 0u64;
    let mut ops = 0usize;
    let mut undecided = Vec::new();
    let mut faults = FaultCounts::default();
    let end = start.saturating_add(count);
    for seed in start..end {
        let o = options(&args, seed);
        // `sim::run` catches a panic of the seed and returns it as a failure (`Panic`).
        match sim::run(&o) {
            Ok(report) => {
                ops += report.history.ops.len();
                faults.add(&report.faults);
                if let Some(Linearizability::Undecided { partition }) = &report.lincheck {
                    eprintln!(
                        "seed {seed}: linearizability undecided (budget ran out on {partition})\n  \
                         replay: {}",
                        o.replay_command()
                    );
                    undecided.push(seed);
                }
                if args.single.is_some() {
                    let _ = writeln!(std::io::stdout(), "{}", report.summary());
                }
            }
            Err(failure) => {
                failures += 1;
                let _ = writeln!(std::io::stdout(), "FAIL {failure}");
            }
        }
        let done = seed - start + 1;
        if args.single.is_none() && done % 1000 == 0 {
            eprintln!(
                "{done} seeds, {failures} failed, {:.1}s",
                began.elapsed().as_secs_f64()
            );
        }
    }
    let lincheck = if args.lincheck {
        format!(
            ", histories: {} linearizable, {} undecided {undecided:?}",
            end - start - failures - undecided.len() as u64,
            undecided.len()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        std::io::stdout(),
        "seeds {start}..{end}: {} passed, {failures} failed, {ops} client operations{lincheck}, \
         {:.1}s\n  faults: {faults}",
        end - start - failures,
        began.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! Run the deterministic Raft simulator over many seeds, or replay one.
//!
//! ```text
//! cargo run -p verisim-raft --release --example simulate -- --seeds 100000 --start 0 --lincheck
//! cargo run -p verisim-raft --example simulate -- --seed 1234        # replay one, verbose
//! # the simulator's power: how often each injected bug is caught, per scenario (docs/simulator.md)
//! cargo run -p verisim-raft --release --example simulate -- --power --seeds 2000 --start 1000000000
//! ```
//! Replays use the dev profile (opt-level 1 here), so the core's debug assertions and overflow
//! checks are on, as in the tests; batches in `--release` run about twice as fast without them
//! (a seed that fails there replays with them on). A panic in a seed (a debug assertion, an
//! overflow) is caught and reported as that seed's failure, and the batch goes on.
//! Options: `--seeds N` (default 1000), `--start S` (default 0), `--seed S` (one seed),
//! `--scenario NAME`, `--nodes N`, `--clients N`, `--fault-ms`, `--heal-ms`, `--quiesce-ms`,
//! `--bug NAME` (an injected bug, `--list-bugs` names them; `--bug-commit-previous-term` and
//! `--bug-local-reads` are kept as aliases), `--panic-at-ms T` (a deliberate panic at virtual time
//! T, for the tests; failures are then expected), `--power` (run every bug, or the one `--bug`
//! names, over `--seeds` seeds of each of `--scenarios mix,calm,...` (default: `mix`, each seed's
//! own scenario, then all eight) and print the detection table),
//! `--lincheck` (also check each client history for linearizability with `verisim-lincheck`, a
//! deterministic step budget per history; histories it does not decide are counted as undecided).
//! Exits non-zero if any seed fails; each failure prints its seed and the replay command.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use std::collections::BTreeMap;

use verisim_raft::sim::{self, Bug, FaultCounts, Linearizability, Scenario, SimOptions};

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
    bug: Option<Bug>,
    lincheck: bool,
    power: bool,
    /// `None`: each seed's own scenario (the default mix).
    scenarios: Vec<Option<Scenario>>,
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
        bug: None,
        lincheck: false,
        power: false,
        scenarios: Vec::new(),
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
            "--bug" => {
                let name = value()?;
                args.bug = Some(
                    Bug::parse(&name)
                        .ok_or_else(|| format!("unknown bug {name} (--list-bugs names them)"))?,
                );
            }
            "--bug-commit-previous-term" => args.bug = Some(Bug::CommitPreviousTerm),
            "--bug-local-reads" => args.bug = Some(Bug::LocalReads),
            "--list-bugs" => {
                for bug in Bug::ALL {
                    println!("{}", bug.name());
                }
                std::process::exit(0);
            }
            "--power" => args.power = true,
            "--scenarios" => {
                for name in value()?.split(',') {
                    args.scenarios.push(match name {
                        "mix" => None,
                        _ => Some(
                            Scenario::parse(name)
                                .ok_or_else(|| format!("unknown scenario {name}"))?,
                        ),
                    });
                }
            }
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
    o.bug = args.bug;
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
    if args.power {
        return power(&args);
    }
    let (start, count) = match args.single {
        Some(s) => (s, 1),
        None => (args.start, args.seeds),
    };
    let began = Instant::now();
    let mut failures = 0u64;
    let mut ops = 0usize;
    let mut undecided = Vec::new();
    let mut faults = FaultCounts::default();
    let mut caught_by: BTreeMap<String, u64> = BTreeMap::new();
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
                *caught_by
                    .entry(format!("{:?}", failure.violation.property))
                    .or_default() += 1;
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
    if let Some(bug) = args.bug {
        let _ = writeln!(
            std::io::stdout(),
            "  bug {}: caught in {failures} of {} seeds ({:.2}%), by {caught_by:?}",
            bug.name(),
            end - start,
            100.0 * failures as f64 / (end - start).max(1) as f64
        );
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The detection table: for each bug and scenario, how many of the seeds catch it, and by which
/// property. Always with the linearizability check (some bugs only show in client histories).
fn power(args: &Args) -> ExitCode {
    let bugs: Vec<Bug> = match args.bug {
        Some(b) => vec![b],
        None => Bug::ALL.to_vec(),
    };
    let scenarios: Vec<Option<Scenario>> = if args.scenarios.is_empty() {
        std::iter::once(None)
            .chain(Scenario::ALL.into_iter().map(Some))
            .collect()
    } else {
        args.scenarios.clone()
    };
    let (start, count) = (args.start, args.seeds);
    let end = start.saturating_add(count);
    let _ = writeln!(
        std::io::stdout(),
        "seeds {start}..{end}, linearizability checked\n\
         | bug | scenario | seeds | caught | % | caught by | first seed |\n|---|---|---:|---:|---:|---|---:|"
    );
    for bug in bugs {
        for &scenario in &scenarios {
            let began = Instant::now();
            let mut caught = 0u64;
            let mut by: BTreeMap<String, u64> = BTreeMap::new();
            let mut first = None;
            for seed in start..end {
                let mut o = SimOptions::for_seed(seed);
                if let Some(s) = scenario {
                    o.scenario = s;
                }
                if let Some(n) = args.nodes {
                    o.nodes = n;
                }
                o.bug = Some(bug);
                o.lincheck = true;
                if let Err(failure) = sim::run(&o) {
                    caught += 1;
                    first.get_or_insert(seed);
                    *by.entry(format!("{:?}", failure.violation.property))
                        .or_default() += 1;
                }
            }
            let by: Vec<String> = by.iter().map(|(p, n)| format!("{p} {n}")).collect();
            let _ = writeln!(
                std::io::stdout(),
                "| {} | {} | {count} | {caught} | {:.2} | {} | {} |",
                bug.name(),
                scenario.map_or("mix", Scenario::name),
                100.0 * caught as f64 / count.max(1) as f64,
                by.join(", "),
                first.map_or("-".into(), |s| s.to_string())
            );
            let _ = std::io::stdout().flush();
            eprintln!(
                "{} / {}: {:.1}s",
                bug.name(),
                scenario.map_or("mix", Scenario::name),
                began.elapsed().as_secs_f64()
            );
        }
    }
    ExitCode::SUCCESS
}

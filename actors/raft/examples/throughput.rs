//! Core overhead: a 3-node cluster in one thread, no I/O, messages delivered at once. Proposes
//! `--entries N` commands of `--size B` bytes in batches of `--batch K` and reports how many entries
//! per second the three cores together commit and apply. The anchor, measured in the same run, is
//! the cost of copying the same payloads as many times as the cluster moves them (leader log, two
//! appends, three applies): the ratio shows what the protocol adds on top of moving bytes.
//!
//! `cargo run -p verisim-raft --release --example throughput -- --entries 200000 --batch 64 --size 100`

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use verisim_raft::{Config, Input, Message, PersistedState, Raft, Role};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Handle every pending Ready; returns the number of entries applied.
fn pump(nodes: &mut [Raft], queue: &mut VecDeque<Message>) -> u64 {
    let mut applied = 0;
    loop {
        let mut progressed = false;
        for node in nodes.iter_mut() {
            while let Some(rd) = node.ready() {
                progressed = true;
                queue.extend(rd.messages);
                applied += rd.committed_entries.len() as u64;
                black_box(&rd.entries);
                node.advance();
            }
        }
        while let Some(m) = queue.pop_front() {
            progressed = true;
            let to = m.to as usize - 1;
            let _ = nodes[to].step(Input::Message(m));
        }
        if !progressed {
            return applied;
        }
    }
}

fn main() {
    let entries = arg("--entries", 200_000);
    let batch = arg("--batch", 64).max(1);
    let size = arg("--size", 100) as usize;
    let mut nodes: Vec<Raft> = (1..=3)
        .map(|id| {
            let mut cfg = Config::new(id, id);
            cfg.log_keep_after_snapshot = 0;
            Raft::new(cfg, PersistedState::bootstrap([1, 2, 3])).expect("valid config")
        })
        .collect();
    let mut queue = VecDeque::new();
    let _ = nodes[0].step(Input::Campaign);
    pump(&mut nodes, &mut queue);
    assert_eq!(nodes[0].role(), Role::Leader);

    let payload = vec![7u8; size];
    let started = Instant::now();
    let mut proposed = 0;
    let mut applied = 0;
    while proposed < entries {
        for _ in 0..batch.min(entries - proposed) {
            let _ = nodes[0].step(Input::Propose(payload.clone()));
            proposed += 1;
        }
        applied += pump(&mut nodes, &mut queue);
        // Keep the in-memory log short, as snapshots would.
        for node in nodes.iter_mut() {
            let index = node.applied_index();
            let _ = node.step(Input::SnapshotTaken {
                index,
                id: index,
                size: 0,
            });
        }
        pump(&mut nodes, &mut queue);
    }
    let raft_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for _ in 0..entries {
        for _ in 0..6 {
            black_box(payload.clone());
        }
    }
    let anchor_secs = started.elapsed().as_secs_f64();

    println!(
        "{entries} entries of {size} B in batches of {batch}: {:.0} entries/s committed and applied on 3 nodes \
         ({applied} applies); anchor (6 payload copies per entry) {:.0} entries/s; ratio {:.1}x",
        entries as f64 / raft_secs,
        entries as f64 / anchor_secs,
        raft_secs / anchor_secs
    );
}

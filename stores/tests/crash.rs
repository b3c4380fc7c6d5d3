//! Crash test: a child process writes to all four engines and prints the id of every write once it
//! is acknowledged; the parent kills it with SIGKILL mid-stream, reopens the stores and checks that
//! everything acknowledged is there, intact, with consistent hashes and digests.
//!
//! The child is this same test binary, re-executed with `CRASH_WRITER_DIR` set.
//!
//! What this can and cannot show: SIGKILL loses what sits in the process (fjall's unflushed journal
//! buffer), so it catches writes acknowledged before they reach the OS; the OS page cache survives a
//! process kill, so the difference between `SyncData` and `Buffer` only shows on power loss, which a
//! test cannot simulate. That part rests on every batch being committed with `SyncData`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use verisim_stores::graph::{Edge, Properties};
use verisim_stores::semantic::{Annotation, TypeDef};
use verisim_stores::tensor::{Tensor, TensorData};
use verisim_stores::vector::{CollectionDef, Metric};
use verisim_stores::{Durability, EntityId, Modality, StoreConfig, Stores, Value};

const ENV_DIR: &str = "CRASH_WRITER_DIR";
/// Set in the child for the group-commit variant.
const ENV_DEFERRED: &str = "CRASH_WRITER_DEFERRED";
const TYPE: &str = "urn:crash:Thing";

fn eid(i: u64) -> EntityId {
    EntityId::new(format!("e{i}")).expect("valid id")
}

fn vector(i: u64) -> Vec<f32> {
    #[allow(clippy::cast_precision_loss)]
    let x = i as f32;
    vec![x, 1.0, 2.0, 3.0]
}

fn tensor(i: u64) -> Tensor {
    #[allow(clippy::cast_possible_wrap)]
    let base = i as i64;
    Tensor {
        shape: vec![2, 3],
        data: TensorData::I64((base..base + 6).collect()),
    }
}

fn annotation(i: u64) -> Annotation {
    #[allow(clippy::cast_possible_wrap)]
    let n = i as i64;
    Annotation {
        types: BTreeSet::from([TYPE.to_owned()]),
        properties: BTreeMap::from([("n".to_owned(), Value::Int(n))]),
        proofs: Vec::new(),
    }
}

/// Child mode: write forever (bounded), acknowledging each entity after its four durable writes.
/// With `deferred`, the engines write without fsync ([`Durability::Deferred`]) and one
/// `persist` of the shared journal makes all four durable before the acknowledgement, as the
/// store actors' group commit does.
fn writer(dir: &str, deferred: bool) -> verisim_stores::Result<()> {
    let mut s = Stores::open(dir, &StoreConfig::default())?;
    if deferred {
        s.set_durability(Durability::Deferred);
    }
    s.vector.create_collection(
        "c",
        CollectionDef {
            dim: 4,
            metric: Metric::L2,
        },
    )?;
    let mut t = TypeDef {
        iri: TYPE.into(),
        label: "Thing".into(),
        supertypes: BTreeSet::new(),
        required: BTreeSet::new(),
        properties: BTreeMap::new(),
    };
    t.properties.insert(
        "n".into(),
        verisim_stores::semantic::PropertyDef {
            datatype: verisim_stores::Datatype::Int,
            pattern: None,
            min: None,
            max: None,
        },
    );
    s.semantic.define_type(t)?;
    let mut out = std::io::stdout().lock();
    for i in 0..100_000u64 {
        let id = eid(i);
        s.graph.put_node(&id, Properties::new())?;
        if i > 0 {
            s.graph.add_edge(Edge {
                source: id.clone(),
                predicate: "prev".into(),
                target: eid(i - 1),
                properties: Properties::new(),
            })?;
        }
        s.vector.upsert("c", &id, &vector(i))?;
        s.tensor.put(&id, &tensor(i))?;
        s.semantic.annotate(&id, annotation(i))?;
        if i == 10 {
            // From here on, a restart restores the HNSW graph from this checkpoint and replays
            // the logged writes after it.
            s.vector.checkpoint()?;
        }
        if deferred {
            s.db.persist(verisim_stores::db::PERSIST_MODE)?;
        }
        // Every write above is durable (its own fsync, or the persist): acknowledge.
        writeln!(out, "ACK {i}")
            .map_err(|e| verisim_stores::StoreError::InvalidInput(e.to_string()))?;
        out.flush()
            .map_err(|e| verisim_stores::StoreError::InvalidInput(e.to_string()))?;
    }
    Ok(())
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn check_consistent(m: &dyn Modality) {
    for (b, d) in m.bucket_digests(0..verisim_stores::BUCKETS).unwrap() {
        let mut x = verisim_stores::BucketDigest::default();
        for (id, h) in m.bucket_items(b).unwrap() {
            x.toggle(&id, &h);
            assert_eq!(m.verify_item(&id).unwrap(), Some(h), "{:?} {id}", m.kind());
        }
        assert_eq!(x, d, "{:?} bucket {b}", m.kind());
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    crash_and_recover("acknowledged_writes_survive_sigkill", false);
}

#[test]
fn group_committed_writes_survive_sigkill() {
    crash_and_recover("group_committed_writes_survive_sigkill", true);
}

/// Runs the writer as a child (this binary, re-executed as test `name`), kills it, recovers.
fn crash_and_recover(name: &str, deferred: bool) {
    if let Ok(dir) = std::env::var(ENV_DIR) {
        let deferred = std::env::var_os(ENV_DEFERRED).is_some();
        if let Err(e) = writer(&dir, deferred) {
            eprintln!("writer failed: {e}");
            std::process::exit(2);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    if deferred {
        cmd.env(ENV_DEFERRED, "1");
    }
    let mut child = KillOnDrop(
        cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ENV_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ACK ")
                && tx.send(n.parse::<u64>().unwrap()).is_err()
            {
                break;
            }
        }
    });
    // Kill after a seeded-random number of acknowledgements (printed, so a failure replays).
    // CRASH_SEED=<n> replays a run.
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        });
    let target = 20 + u64::from(seed % 40);
    println!("killing after {target} acknowledgements (seed {seed})");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = None;
    while acked.is_none_or(|a| a + 1 < target) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(n) => acked = Some(n),
            Err(e) => panic!("writer stopped acknowledging after {acked:?}: {e} (seed {seed})"),
        }
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Acks printed before the kill but not yet read count too.
    while let Ok(n) = rx.try_recv() {
        acked = Some(n);
    }
    let last = acked.unwrap();

    let s = Stores::open(dir.path(), &StoreConfig::default()).unwrap();
    for i in 0..=last {
        let id = eid(i);
        assert!(
            s.graph.get_node(&id).unwrap().is_some(),
            "graph {i} (seed {seed})"
        );
        if i > 0 {
            assert_eq!(
                s.graph
                    .neighbours(&id, verisim_stores::graph::Direction::Out, Some("prev"))
                    .unwrap(),
                vec![eid(i - 1)],
                "edge {i} (seed {seed})"
            );
        }
        assert_eq!(
            s.vector.get("c", &id).unwrap(),
            Some(vector(i)),
            "vector {i} (seed {seed})"
        );
        assert_eq!(
            s.tensor.get(&id).unwrap(),
            Some(tensor(i)),
            "tensor {i} (seed {seed})"
        );
        assert_eq!(
            s.semantic.get(&id).unwrap(),
            Some(annotation(i)),
            "semantic {i} (seed {seed})"
        );
    }
    // The ANN index was restored (checkpoint + replay) and finds every acknowledged vector.
    assert!(s.vector.index_stats("c").unwrap().from_checkpoint);
    for i in 0..=last {
        let hits = s
            .vector
            .search(
                "c",
                &vector(i),
                1,
                verisim_stores::vector::SearchMode::Ann { ef: None },
                None,
            )
            .unwrap();
        assert_eq!(hits[0].id, eid(i), "ANN lookup of {i} (seed {seed})");
    }
    let hits = s
        .vector
        .search(
            "c",
            &vector(last),
            1,
            verisim_stores::vector::SearchMode::Ann { ef: None },
            None,
        )
        .unwrap();
    assert_eq!(hits[0].id, eid(last));
    check_consistent(&s.graph);
    check_consistent(&s.vector);
    check_consistent(&s.tensor);
    check_consistent(&s.semantic);
    println!("{} entities acknowledged and recovered", last + 1);
}

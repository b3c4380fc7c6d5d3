//! Whole-system tests of registration under faults (issue 6), on real node processes through
//! `verisim-client`: no quorum (503 `no_quorum` with `Retry-After`, then the same request completes),
//! store actors killed during a registration load, and nodes SIGKILLed during a load whose recorded
//! history is checked with `verisim-lincheck`. After every load, every acknowledged entity is read
//! back from every node, verified against the hashes its acknowledgement returned.
//!
//! The last test is the regression test of two bugs these tests found:
//! * *Lost store names*: ractor 0.16.5 unregisters a *name* when any actor cell carrying it stops,
//!   remote proxies included (`ActorCell::set_status`), and ractor_cluster gives each `RemoteActor`
//!   proxy the remote actor's name. So when a peer's store actor restarted, or a peer's session
//!   closed, this node's own `verisim.store.<modality>` left the registry and the node answered
//!   every registration `503 unavailable`. Local stores are now found through their process group
//!   (`store_actors::local_store`).
//! * *Empty membership after a restart*: a node restarted before its first snapshot rebuilt its
//!   replica without the bootstrap membership (it lives only in the recorded snapshot metadata),
//!   so its proxy placed new entities on no node (`BadPlacement`).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::entities::{entity_cluster_with, hexad, node_urls, signed_headers, via};
use support::{Cluster, Options, restart_count, test_seed, wait_for};
use verisim_client::http::{Client, ClientError, RetryPolicy, Session};
use verisim_client::wire::{
    EntityId, EntityView, EntityWritten, ErrorCode, ModalityHashes, RegisterRequest,
};
use verisim_lincheck::{KvHistory, KvInput, KvOutput};

const LONG: Duration = Duration::from_secs(30);

/// Sets `stop` when dropped, so worker threads end also when the test thread panics inside
/// `thread::scope` (which would otherwise wait for them forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn hashes_of(v: &EntityView) -> ModalityHashes {
    ModalityHashes {
        graph: v.graph.hash,
        vector: v.vector.hash,
        tensor: v.tensor.hash,
        semantic: v.semantic.hash,
    }
}

/// Checks that a fetched entity is `content` at `version`, every modality verified by the proxy
/// against the registry's hash, and (when given) that those hashes are the acknowledged ones.
fn check_view(
    view: &EntityView,
    content: &RegisterRequest,
    version: u64,
    hashes: Option<&ModalityHashes>,
) -> Result<(), String> {
    let id = content.id.as_str();
    if view.id != content.id || view.version != version {
        return Err(format!(
            "{id}: read {}@v{}, expected v{version}",
            view.id, view.version
        ));
    }
    if !view.all_verified() {
        return Err(format!("{id}: not every modality verified: {view:?}"));
    }
    if let Some(h) = hashes
        && hashes_of(view) != *h
    {
        return Err(format!(
            "{id}: registry hashes {:?} differ from the acknowledged {h:?}",
            hashes_of(view)
        ));
    }
    let same = view.graph.data.as_ref() == Some(&content.graph)
        && view.vector.data.as_ref() == Some(&content.vector)
        && view.tensor.data.as_ref() == Some(&content.tensor)
        && view.semantic.data.as_ref() == Some(&content.semantic);
    if !same {
        return Err(format!("{id}: the data read differs from what was written"));
    }
    Ok(())
}

/// Whether an error is one a client may get from a cluster under faults (after its retries): a 503
/// or no node reachable. Anything else (409, 500, 502 drift, ...) is a bug here.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Api { status, .. } => *status == 503,
        ClientError::Transport { .. } => true,
        _ => false,
    }
}

fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Api {
            status, raw_code, ..
        } => format!("{status} {raw_code}"),
        ClientError::Transport { .. } => "transport".into(),
        other => format!("{other}"),
    }
}

/// One client per node, each trying that node first and the others after it, in `session`.
fn clients_over(urls: &[String], session: &Session, policy: &RetryPolicy) -> Vec<Client> {
    (0..urls.len())
        .map(|k| {
            let mut order = urls.to_vec();
            order.rotate_left(k);
            Client::new(&order)
                .expect("client")
                .with_policy(policy.clone())
                .with_session(session.clone())
        })
        .collect()
}

/// A client that gives up after one attempt of at most 2 s: what it is told about a write during
/// a failover is often "unknown".
fn impatient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        request_timeout: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. No quorum
// ---------------------------------------------------------------------------------------------

/// A registration sent to the only live node of three is answered `503 no_quorum` with
/// `Retry-After` (fast: the nodes' commit timeout is lowered to 1.5 s), and so is a read; once the
/// other two are back, the same request (same request id, signed afresh) is accepted, once: it
/// answers the same 201 again through another node, and the entity reads back verified from every
/// node. Round 1: the leader survives, its two followers are SIGSTOPped (and SIGCONTed); round 2: a
/// follower survives, the other two are SIGKILLed (and restarted on their data directories).
#[test]
fn without_a_quorum_a_registration_is_503_no_quorum_and_the_same_request_completes_after() {
    let (mut c, client, _) = entity_cluster_with(
        Options {
            config: Some("[proxy]\ncommit_timeout_ms = 1500\n".into()),
            ..Options::default()
        },
        41,
    );
    for (round, survivor_leads) in [(1u64, true), (2, false)] {
        let (leader, _) = c.wait_leader(LONG);
        let survivor = if survivor_leads {
            leader
        } else {
            (1..=3).find(|&id| id != leader).expect("a follower")
        };
        let others: Vec<u64> = (1..=3).filter(|&id| id != survivor).collect();
        // An entity registered before the fault, to be read without a quorum.
        let before = hexad(&format!("before-{round}"), round);
        client.register(&before).expect("register before the fault");

        for &o in &others {
            if survivor_leads {
                c.node_mut(o).sigstop();
            } else {
                c.node_mut(o).kill9();
            }
        }
        eprintln!("round {round}: n{survivor} alone (leader was n{leader})");

        let req = hexad(&format!("nq-{round}"), 100 + round);
        let body = serde_json::to_vec(&req).unwrap();
        let rid = format!("r-nq-{round}");
        let send = |c: &Cluster, via_node: u64| {
            c.node(via_node).request(
                "POST",
                "/v1/entities",
                &signed_headers(&client, "POST", "/v1/entities", &body, &rid),
                &body,
            )
        };
        let t0 = Instant::now();
        let r = send(&c, survivor).expect("the survivor answers");
        let took = t0.elapsed();
        assert_eq!(
            (r.status, r.code()),
            (503, Some(ErrorCode::NoQuorum.as_str())),
            "round {round}: {r:?}"
        );
        let retry_after = r.header("retry-after").unwrap_or_else(|| {
            panic!("round {round}: a 503 without Retry-After: {r:?}");
        });
        assert!(
            retry_after.trim().parse::<u64>().is_ok_and(|s| s >= 1),
            "round {round}: Retry-After {retry_after:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "round {round}: the 503 took {took:?} (commit timeout 1.5 s)"
        );
        // A read needs the quorum too (read barrier).
        let path = format!("/v1/entities/{}", before.id);
        let read = c
            .node(survivor)
            .request(
                "GET",
                &path,
                &signed_headers(&client, "GET", &path, b"", &format!("r-read-{round}")),
                b"",
            )
            .expect("the survivor answers a read");
        assert_eq!(
            (read.status, read.code()),
            (503, Some("no_quorum")),
            "round {round}: {read:?}"
        );
        assert!(read.header("retry-after").is_some(), "{read:?}");

        for &o in &others {
            if survivor_leads {
                c.node_mut(o).sigcont();
            } else {
                c.node_mut(o).start();
            }
        }
        // The same request, retried as a client would (503 means "try again"), is accepted.
        let accepted = wait_for(
            &format!("round {round}: the same request to be accepted"),
            LONG,
            || {
                let r = send(&c, survivor).ok()?;
                match r.status {
                    201 => Some(r),
                    503 => None,
                    _ => panic!("round {round}: the retry got {r:?}"),
                }
            },
        );
        let written: EntityWritten =
            serde_json::from_value(accepted.body.clone()).expect("a 201 body");
        assert_eq!((written.id.as_str(), written.version), (req.id.as_str(), 1));
        // Once more through another node: the committed outcome, nothing written twice.
        let again = wait_for("a retry through another node", LONG, || {
            let r = send(&c, others[0]).ok()?;
            (r.status != 503).then_some(r)
        });
        assert_eq!(
            (again.status, &again.body),
            (201, &accepted.body),
            "round {round}"
        );
        for n in 1..=3 {
            let view = via(&c, n, &client)
                .get(&req.id, false)
                .unwrap_or_else(|e| panic!("round {round}: read {} via n{n}: {e}", req.id));
            check_view(&view, &req, 1, Some(&written.hashes))
                .unwrap_or_else(|e| panic!("round {round} via n{n}: {e}"));
            let view = via(&c, n, &client)
                .get(&before.id, false)
                .unwrap_or_else(|e| panic!("round {round}: read {} via n{n}: {e}", before.id));
            check_view(&view, &before, 1, None)
                .unwrap_or_else(|e| panic!("round {round} via n{n}: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Store actors killed during a registration load
// ---------------------------------------------------------------------------------------------

const LOAD_THREADS: u64 = 3;
/// Kill rounds of the store test (one of them kills on two nodes): at most 9 restarts per node's
/// `stores` subtree, under its intensity limit of 10 in 60 s.
const KILL_ROUNDS: usize = 8;

/// How many requests to `route` node `n` answered with `status`, from its `/metrics`.
fn http_count(c: &Cluster, n: u64, route: &str, status: u16) -> u64 {
    let Ok(r) = c.node(n).get("/metrics") else {
        return 0;
    };
    let text = r.body.as_str().unwrap_or_default().to_string();
    let labels = format!("{{route=\"{route}\",code=\"{status}\"}}");
    text.lines()
        .filter_map(|l| l.strip_prefix("verisim_http_requests_total"))
        .filter_map(|l| l.strip_prefix(labels.as_str()))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// One registration of a load: what was sent, when, and what the client finally got.
struct Registration {
    req: RegisterRequest,
    started: Instant,
    ended: Instant,
    result: Result<EntityWritten, ClientError>,
}

/// Store actors are killed (`POST /admin/kill/verisim.store.<modality>`) nine times, always while
/// registrations are in flight: the vector store and one other (seeded) modality, on one node at a
/// time and once on two nodes at once; each time the test waits until the supervisor restarted it.
/// Three client threads register distinct entities through all nodes throughout, with the client's
/// retries. Afterwards every 201 reads back from every node with the 201's hashes (a
/// `drift_detected` is a failure), failed registrations are counted and printed (only 503s or
/// unreachable nodes are allowed), and the tree's restart counts are exactly the kills.
#[test]
fn store_actors_killed_during_a_registration_load_lose_no_acknowledged_registration() {
    let seed = test_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (c, client, _) = entity_cluster_with(Options::default(), 42);
    let session = client.session().expect("session");
    let urls = node_urls(&c);
    let tree = |n: u64| c.node(n).get("/admin/tree").ok().map(|r| r.body);
    for n in 1..=3 {
        wait_for(&format!("n{n}'s stores subtree"), LONG, || {
            tree(n).filter(|t| restart_count(t, "semantic").is_some())
        });
    }

    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    // The id of the registration each thread has in flight, if any.
    let in_flight: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
    // (when the kill was sent, when the restart was seen) of every kill round.
    let mut windows: Vec<(Instant, Instant)> = Vec::new();
    let mut kills: BTreeMap<(u64, &str), u64> = BTreeMap::new();
    let t_load = Instant::now();

    let results: Vec<Registration> = std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        let workers: Vec<_> = (0..LOAD_THREADS)
            .map(|t| {
                let (stop, acked, in_flight, urls, session) =
                    (&stop, &acked, &in_flight, &urls, &session);
                s.spawn(move || {
                    let clients = clients_over(urls, session, &RetryPolicy::default());
                    let mut out = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let id = format!("s{t}-{n}");
                        let req = hexad(&id, (t + 1) * 1_000_000 + n);
                        in_flight.lock().unwrap().insert(t, id);
                        let started = Instant::now();
                        let result = clients[(n as usize) % clients.len()].register(&req);
                        let ended = Instant::now();
                        in_flight.lock().unwrap().remove(&t);
                        if result.is_ok() {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        out.push(Registration {
                            req,
                            started,
                            ended,
                            result,
                        });
                        n += 1;
                    }
                    out
                })
            })
            .collect();

        let wait_acked = |what: &str, more: u64| {
            let target = acked.load(Ordering::SeqCst) + more;
            wait_for(what, LONG, || {
                (acked.load(Ordering::SeqCst) >= target).then_some(())
            });
        };
        wait_acked("the load to start", 10);
        let others = ["graph", "tensor", "semantic"];
        for round in 0..KILL_ROUNDS {
            let modality = if round % 2 == 0 {
                "vector"
            } else {
                others[rng.random_range(0..others.len())]
            };
            // Round 4 kills the same store on two nodes at once: a registration's payload then
            // reaches one replica of three until they are back.
            let first = rng.random_range(1..=3u64);
            let nodes: Vec<u64> = if round == 4 {
                vec![first, first % 3 + 1]
            } else {
                vec![first]
            };
            let before: Vec<u64> = nodes
                .iter()
                .map(|&n| {
                    tree(n)
                        .and_then(|t| restart_count(&t, modality))
                        .expect("tree")
                })
                .collect();
            let sent = Instant::now();
            for &n in &nodes {
                let r = c
                    .node(n)
                    .post(&format!("/admin/kill/verisim.store.{modality}"), None)
                    .expect("kill request");
                assert!(r.ok(), "kill {modality} on n{n}: {r:?}");
                *kills.entry((n, modality)).or_default() += 1;
            }
            // A registration in flight now overlaps the kill window [sent, restart seen].
            wait_for("a registration in flight after the kill", LONG, || {
                (!in_flight.lock().unwrap().is_empty()).then_some(())
            });
            for (&n, &b) in nodes.iter().zip(&before) {
                wait_for(
                    &format!("n{n}'s {modality} store to be restarted"),
                    LONG,
                    || {
                        tree(n)
                            .filter(|t| restart_count(t, modality) == Some(b + 1))
                            .map(|_| ())
                    },
                );
            }
            windows.push((sent, Instant::now()));
            eprintln!(
                "round {round}: killed {modality} on {nodes:?}, restarted after {:?}",
                sent.elapsed()
            );
            wait_acked(&format!("registrations after round {round}"), 10);
        }
        // The load goes on after the last restart.
        wait_acked("registrations after the last restart", 10);
        stop.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("load thread"))
            .collect()
    });
    let load_time = t_load.elapsed();

    // Restart counts: exactly the kills, per node and modality (one_for_one: nothing else).
    for n in 1..=3u64 {
        let t = tree(n).expect("tree");
        for m in ["graph", "vector", "tensor", "semantic"] {
            let killed = kills.get(&(n, m)).copied().unwrap_or(0);
            assert_eq!(
                restart_count(&t, m),
                Some(killed),
                "seed {seed}: n{n} {m} restarts"
            );
        }
    }

    let overlaps = |r: &Registration| {
        windows
            .iter()
            .any(|&(from, to)| r.started <= to && r.ended >= from)
    };
    let during: Vec<&Registration> = results.iter().filter(|r| overlaps(r)).collect();
    let during_ok = during.iter().filter(|r| r.result.is_ok()).count();
    let failed: Vec<&Registration> = results.iter().filter(|r| r.result.is_err()).collect();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for r in &failed {
        *by_kind
            .entry(error_kind(r.result.as_ref().unwrap_err()))
            .or_default() += 1;
    }
    eprintln!(
        "{} registrations in {load_time:?}: {} acknowledged, {} failed {by_kind:?}; {} overlapped \
         a kill window ({during_ok} of them acknowledged)",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        during.len(),
    );
    for r in &failed {
        eprintln!("  failed: {}: {}", r.req.id, r.result.as_ref().unwrap_err());
    }
    assert!(
        during_ok > 0,
        "seed {seed}: no registration overlapping a kill was acknowledged"
    );
    let unexpected: Vec<String> = failed
        .iter()
        .filter(|r| !retryable(r.result.as_ref().unwrap_err()))
        .map(|r| format!("{}: {}", r.req.id, r.result.as_ref().unwrap_err()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "seed {seed}: errors a cluster under store restarts should not give: {unexpected:#?}"
    );

    // Every acknowledged registration, from every node.
    let readers: Vec<Client> = (1..=3).map(|n| via(&c, n, &client)).collect();
    let mut remote = 0usize;
    for r in &results {
        let Ok(w) = &r.result else { continue };
        for (i, reader) in readers.iter().enumerate() {
            let n = i as u64 + 1;
            let view = reader
                .get(&r.req.id, false)
                .unwrap_or_else(|e| panic!("seed {seed}: read {} via n{n}: {e}", r.req.id));
            check_view(&view, &r.req, 1, Some(&w.hashes))
                .unwrap_or_else(|e| panic!("seed {seed}: via n{n}: {e}"));
            remote += usize::from(
                [
                    &view.graph.replica,
                    &view.vector.replica,
                    &view.tensor.replica,
                    &view.semantic.replica,
                ]
                .iter()
                .any(|rep| **rep != format!("n{n}")),
            );
        }
    }
    eprintln!("{remote} of the verified reads were served (in part) by another node's replica");
    let refused: Vec<u64> = (1..=3)
        .map(|n| http_count(&c, n, "/v1/entities", 503))
        .collect();
    eprintln!("503 answers to POST /v1/entities (retried by the clients), n1..n3: {refused:?}");
    // What became of the failed ones (committed or not) is printed, not asserted.
    for r in &failed {
        match client.get(&r.req.id, false) {
            Ok(v) => eprintln!("  {} was committed after all (v{})", r.req.id, v.version),
            Err(e) => eprintln!("  {}: {}", r.req.id, error_kind(&e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Nodes SIGKILLed during a load, history checked
// ---------------------------------------------------------------------------------------------

/// Registrations acknowledged in each phase of the node-kill test (before, without, after).
const PHASE: u64 = 40;

/// The register value of an entity state: its version and the seed its content was made from
/// (`ex:count`), e.g. `v2:3000017`.
fn value(version: u64, content_seed: u64) -> String {
    format!("v{version}:{content_seed}")
}

/// The register value a fetched entity holds, after checking its content is exactly the hexad of
/// the seed it names and verified (`Err` says what is wrong).
fn value_of(view: &EntityView) -> Result<String, String> {
    let seed = view
        .semantic
        .data
        .as_ref()
        .and_then(|s| s.properties.get("ex:count"))
        .and_then(|v| match v {
            verisim_client::wire::Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        })
        .ok_or_else(|| format!("{}: no ex:count in {view:?}", view.id))?;
    let expected = hexad(view.id.as_str(), seed);
    check_view(view, &expected, view.version, None)?;
    Ok(value(view.version, seed))
}

/// What one key's writer knows: the last acknowledged write (value, hashes), and the writes after
/// it whose outcome it never learned.
#[derive(Default, Clone, Debug)]
struct KeyState {
    acked: Option<(String, ModalityHashes)>,
    unknown: Vec<String>,
}

/// What the load threads share.
struct Load<'a> {
    base: Instant,
    stop: &'a AtomicBool,
    acked: AtomicU64,
    history: Mutex<KvHistory>,
    /// (generation, node URLs): bumped when a restarted node comes back on a new port.
    urls: RwLock<(u64, Vec<String>)>,
    session: Session,
    /// Every key written (or attempted), for the readers.
    keys: Mutex<Vec<String>>,
    /// Per key, what its writer learned.
    states: Mutex<BTreeMap<String, KeyState>>,
    /// Answers a correct cluster never gives, with the operation.
    unexpected: Mutex<Vec<String>>,
    /// Failed reads during the load, by kind.
    failed_reads: Mutex<BTreeMap<String, usize>>,
}

impl Load<'_> {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn invoke(&self, client: u64, input: KvInput<String, String>) -> verisim_lincheck::OpId {
        let at = self.now();
        self.history.lock().unwrap().invoke(client, input, at)
    }

    fn complete(&self, op: verisim_lincheck::OpId, output: KvOutput<String>) {
        let at = self.now();
        self.history
            .lock()
            .unwrap()
            .complete(op, output, at)
            .expect("complete");
    }

    fn fail(&self, op: verisim_lincheck::OpId) {
        let at = self.now();
        self.history.lock().unwrap().fail(op, at).expect("fail");
    }

    fn unexpected(&self, what: String) {
        eprintln!("UNEXPECTED: {what}");
        self.unexpected.lock().unwrap().push(what);
    }

    /// A recorded write: a registration (`expected: None`) or an update with `If-Match`, modelled
    /// as a compare-and-set of the key's value. 201/200 swapped, 409 (and 404 for an update) did
    /// not; a 503 or an unreachable cluster leaves the outcome unknown.
    fn write(
        &self,
        thread: u64,
        client: &Client,
        key: &str,
        expected: Option<(u64, u64)>,
        content_seed: u64,
    ) -> Option<EntityWritten> {
        let version = expected.map_or(1, |(v, _)| v + 1);
        let new = value(version, content_seed);
        let op = self.invoke(
            thread,
            KvInput::cas(
                key.to_string(),
                expected.map(|(v, s)| value(v, s)),
                new.clone(),
            ),
        );
        let req = hexad(key, content_seed);
        let result = match expected {
            None => client.register(&req),
            Some((v, _)) => {
                let (id, update) = req.into_update();
                client.update(&id, &update, v)
            }
        };
        let mut states = self.states.lock().unwrap();
        let state = states.entry(key.to_string()).or_default();
        match result {
            Ok(w) => {
                self.complete(op, KvOutput::Swapped(true));
                if w.version != version {
                    self.unexpected(format!("{key}: wrote {new}, answered v{}", w.version));
                }
                state.acked = Some((new, w.hashes));
                state.unknown.clear();
                Some(w)
            }
            Err(e) if e.code() == Some(ErrorCode::VersionConflict) => {
                self.complete(op, KvOutput::Swapped(false));
                None
            }
            Err(e) if expected.is_some() && e.code() == Some(ErrorCode::NotFound) => {
                self.complete(op, KvOutput::Swapped(false));
                None
            }
            Err(e) => {
                if !retryable(&e) {
                    self.unexpected(format!("{key}: writing {new}: {e}"));
                }
                state.unknown.push(new);
                None
            }
        }
    }

    /// A recorded linearizable read (a refusal is a failed read: it has no effect).
    fn read(&self, thread: u64, client: &Client, key: &str) -> Result<Option<EntityView>, String> {
        let op = self.invoke(thread, KvInput::get(key.to_string()));
        match client.get(&EntityId::new(key).unwrap(), false) {
            Ok(view) => {
                let v = value_of(&view).unwrap_or_else(|e| {
                    self.unexpected(format!("read {key}: {e}"));
                    format!("corrupt:{}", view.version)
                });
                self.complete(op, KvOutput::Value(Some(v)));
                Ok(Some(view))
            }
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                self.complete(op, KvOutput::Value(None));
                Ok(None)
            }
            Err(e) => {
                self.fail(op);
                *self
                    .failed_reads
                    .lock()
                    .unwrap()
                    .entry(error_kind(&e))
                    .or_default() += 1;
                Err(format!("read {key}: {e}"))
            }
        }
    }

    /// One load thread: registers new keys, updates some of its own acknowledged ones with
    /// `If-Match: 1`, and reads keys of every thread, through all nodes; a quarter of the
    /// operations with a client that does not retry.
    fn run(&self, thread: u64, seed: u64) {
        let mut rng =
            StdRng::seed_from_u64(seed ^ (thread + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut generation = u64::MAX;
        let (mut clients, mut hasty) = (Vec::new(), Vec::new());
        // Own keys at version 1 with a known seed: candidates for an update.
        let mut updatable: Vec<(String, u64)> = Vec::new();
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            {
                let urls = self.urls.read().unwrap();
                if urls.0 != generation {
                    generation = urls.0;
                    clients = clients_over(&urls.1, &self.session, &RetryPolicy::default());
                    hasty = clients_over(&urls.1, &self.session, &impatient());
                }
            }
            // A quarter of the operations do not retry, so that some writes end indeterminate.
            let pool = if rng.random_bool(0.25) {
                &hasty
            } else {
                &clients
            };
            let client = &pool[rng.random_range(0..pool.len())];
            let content_seed = (thread + 1) * 1_000_000 + n;
            n += 1;
            let roll = rng.random_range(0..10);
            if roll < 2 && !updatable.is_empty() {
                let (key, old) = updatable.swap_remove(rng.random_range(0..updatable.len()));
                self.write(thread, client, &key, Some((1, old)), content_seed);
            } else if roll < 4 {
                let key = {
                    let keys = self.keys.lock().unwrap();
                    (!keys.is_empty()).then(|| keys[rng.random_range(0..keys.len())].clone())
                };
                if let Some(key) = key {
                    let _ = self.read(thread, client, &key);
                }
            } else {
                let key = format!("k{thread}-{n}");
                self.keys.lock().unwrap().push(key.clone());
                if self
                    .write(thread, client, &key, None, content_seed)
                    .is_some()
                {
                    self.acked.fetch_add(1, Ordering::SeqCst);
                    updatable.push((key, content_seed));
                }
            }
        }
    }
}

/// Three client threads register entities, update some with `If-Match` and read others, through
/// all nodes, while the leader is SIGKILLed and restarted on its data directory, then a follower
/// the same way. Every operation goes into a history (a write whose answer was an error is an
/// indeterminate operation); afterwards every key is read on every node into the same history,
/// which `verisim-lincheck` must find linearizable; and every acknowledged entity must read back
/// from every node with the hashes of its last acknowledgement (or be a later write whose
/// outcome was unknown).
#[test]
fn nodes_sigkilled_during_a_registration_load_keep_every_acknowledged_entity_linearizably() {
    let seed = test_seed();
    let (mut c, client, _) = entity_cluster_with(
        Options {
            config: Some("[proxy]\ncommit_timeout_ms = 3000\n".into()),
            ..Options::default()
        },
        43,
    );
    let stop = AtomicBool::new(false);
    let load = Load {
        base: c.started,
        stop: &stop,
        acked: AtomicU64::new(0),
        history: Mutex::new(KvHistory::new()),
        urls: RwLock::new((0, node_urls(&c))),
        session: client.session().expect("session"),
        keys: Mutex::new(Vec::new()),
        states: Mutex::new(BTreeMap::new()),
        unexpected: Mutex::new(Vec::new()),
        failed_reads: Mutex::new(BTreeMap::new()),
    };
    let t_load = Instant::now();
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        let workers: Vec<_> = (0..LOAD_THREADS)
            .map(|t| {
                let load = &load;
                s.spawn(move || load.run(t, seed))
            })
            .collect();
        let wait_acked = |what: &str, more: u64| {
            let target = load.acked.load(Ordering::SeqCst) + more;
            wait_for(what, LONG, || {
                (load.acked.load(Ordering::SeqCst) >= target).then_some(())
            });
        };
        wait_acked("the load to start", PHASE);
        let mut previous = 0;
        for victim_leads in [true, false] {
            let (leader, term) = c.wait_leader(LONG);
            let victim = if victim_leads {
                leader
            } else {
                (1..=3)
                    .find(|&id| id != leader && id != previous)
                    .expect("a follower")
            };
            previous = victim;
            c.node_mut(victim).kill9();
            let t0 = Instant::now();
            if victim_leads {
                c.wait_new_leader(victim, term, LONG);
            }
            wait_acked(&format!("registrations without n{victim}"), PHASE);
            eprintln!(
                "killed n{victim} ({}); {PHASE} registrations acknowledged after {:?}",
                if victim_leads { "leader" } else { "follower" },
                t0.elapsed()
            );
            c.node_mut(victim).start();
            {
                let mut urls = load.urls.write().unwrap();
                *urls = (urls.0 + 1, node_urls(&c));
            }
            let commit = c.leader_commit();
            c.wait_applied(victim, commit, LONG);
            wait_acked(&format!("registrations after n{victim} is back"), PHASE);
        }
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("load thread");
        }
    });
    let load_time = t_load.elapsed();

    // Read every key on every node, into the history.
    let keys = load.keys.lock().unwrap().clone();
    let states = load.states.lock().unwrap().clone();
    let readers: Vec<Client> = (1..=3).map(|n| via(&c, n, &client)).collect();
    let mut problems = Vec::new();
    for key in &keys {
        let state = states.get(key).cloned().unwrap_or_default();
        for (i, reader) in readers.iter().enumerate() {
            let n = i as u64 + 1;
            let read = load.read(100 + n, reader, key);
            let Some((acked, hashes)) = &state.acked else {
                continue;
            };
            // An acknowledged entity: readable here, at its last acknowledged value with those
            // hashes, or at a later write whose outcome was unknown.
            match read {
                Ok(Some(view)) => match value_of(&view) {
                    Ok(v) if v == *acked && hashes_of(&view) == *hashes => {}
                    Ok(v) if v == *acked => problems.push(format!(
                        "{key} via n{n}: hashes {:?}, the acknowledgement said {hashes:?}",
                        hashes_of(&view)
                    )),
                    Ok(v) if state.unknown.contains(&v) => {}
                    Ok(v) => problems.push(format!("{key} via n{n}: {v}, acknowledged {acked}")),
                    Err(e) => problems.push(format!("{key} via n{n}: {e}")),
                },
                Ok(None) => {
                    problems.push(format!("{key} via n{n}: not found, acknowledged {acked}"))
                }
                Err(e) => problems.push(format!("{key} via n{n}: {e}")),
            }
        }
    }

    let history = load.history.into_inner().unwrap();
    let unknown = history
        .operations
        .iter()
        .filter(|o| matches!(o.outcome, verisim_lincheck::Outcome::Unknown))
        .count();
    let acked_keys = states.values().filter(|s| s.acked.is_some()).count();
    eprintln!(
        "{} operations in {load_time:?} ({} keys, {acked_keys} acknowledged, {unknown} writes with \
         unknown outcome); failed reads during the load: {:?}",
        history.len(),
        keys.len(),
        load.failed_reads.lock().unwrap()
    );
    let unexpected = load.unexpected.into_inner().unwrap();
    assert!(
        unexpected.is_empty(),
        "seed {seed}: answers a correct cluster never gives: {unexpected:#?}"
    );
    assert!(
        problems.is_empty(),
        "seed {seed}: acknowledged entities not read back: {problems:#?}"
    );
    assert!(
        acked_keys as u64 >= 5 * PHASE,
        "seed {seed}: only {acked_keys} acknowledged"
    );

    support::assert_linearizable(&history, seed);
    support::assert_a_forged_read_is_refused(
        &history,
        &keys[0],
        load.base.elapsed().as_nanos() as u64,
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Each node finds its own store actors after a peer's store or process went away
// ---------------------------------------------------------------------------------------------

/// After a peer's store actor restarted (here n2's vector store), and after a peer process was
/// SIGKILLed and restarted (here n3), every node still serves registrations from its own stores:
/// one registration through each node, with no retry and no other node to fail over to, succeeds.
#[test]
fn every_node_finds_its_own_stores_after_a_peer_store_restart_and_a_peer_crash() {
    let (mut c, client, _) = entity_cluster_with(Options::default(), 44);
    let session = client.session().expect("session");
    let once = |c: &Cluster, n: u64| {
        Client::new(&[format!("http://{}", c.node(n).http.unwrap())])
            .expect("client")
            .with_policy(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
            .with_session(session.clone())
    };
    let register_through_each = |c: &Cluster, nodes: &[u64], tag: &str| {
        for &n in nodes {
            let req = hexad(&format!("{tag}-via-n{n}"), n);
            let w = once(c, n)
                .register(&req)
                .unwrap_or_else(|e| panic!("{tag}: register through n{n}: {e}"));
            for m in 1..=3 {
                let view = via(c, m, &client)
                    .get(&req.id, false)
                    .unwrap_or_else(|e| panic!("{tag}: read {} via n{m}: {e}", req.id));
                check_view(&view, &req, 1, Some(&w.hashes)).unwrap();
            }
        }
    };
    register_through_each(&c, &[1, 2, 3], "before");

    let r = c
        .node(2)
        .post("/admin/kill/verisim.store.vector", None)
        .expect("kill request");
    assert!(r.ok(), "{r:?}");
    wait_for("n2's vector store to be restarted", LONG, || {
        let t = c.node(2).get("/admin/tree").ok()?.body;
        (restart_count(&t, "vector") == Some(1)).then_some(())
    });
    register_through_each(&c, &[1, 2, 3], "after-store-restart");

    c.node_mut(3).kill9();
    c.node_mut(3).start();
    let commit = c.leader_commit();
    c.wait_applied(3, commit, LONG);
    register_through_each(&c, &[1, 2, 3], "after-peer-crash");
}

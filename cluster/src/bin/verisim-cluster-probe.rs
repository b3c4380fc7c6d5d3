//! Test and measurement probe: one cluster node per process, driven by lines on stdin, reporting
//! events as lines on stdout. The multi-process tests in `cluster/tests/` and the measurements in
//! `docs/cluster.md` use it; it is not part of a VeriSim node.
//!
//! Output lines (space-separated):
//! - `READY <name> <listen-addr>` once the node listens
//! - `UP <node> <node-id>`, `DOWN <node> <reason>`, `HANDSHAKE_FAILED <peer-addr>`,
//!   `DIAL_FAILED <addr> <error>`
//! - `ECHO_OK <node> <bytes> <micros>` / `ECHO_ERR <node> <error>`
//! - `RAW_SENT <node> <bytes>` / `RAW_ERR <node> <error>`, and `RAW_RECEIVED <bytes>` on the
//!   receiving side
//! - `BENCH_ECHO <node> <n> <bytes> p50_us=<..> p99_us=<..> mean_us=<..>`
//! - `SEED_OK <addr>` / `SEED_ERR <addr> <error>`
//!
//! Input lines: `ECHO <node> <bytes>`, `RAW <node> <bytes>` (one message, whatever its size),
//! `BENCH_ECHO <node> <n> <bytes>`, `SEED <addr>`, `QUIT`.
//!
//! The node runs as a VeriSim node runs it: the `cluster` subtree
//! ([`verisim_cluster::cluster_subtree`]) under a supervisor.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use verisim_cluster::{Cbor, ClusterConfig, ClusterHandle, CookieSource, PeerEvent, TlsConfig};
use verisim_supervision::SupervisorHandle;

const SCOPE: &str = "verisim.probe";
const GROUP: &str = "sink";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
    #[serde(with = "verisim_cluster::codec::bytes")]
    data: Vec<u8>,
}

#[derive(RactorClusterMessage)]
enum ProbeMsg {
    #[rpc]
    Echo(Cbor<Payload>, RpcReplyPort<Cbor<Payload>>),
    Raw(Cbor<Payload>),
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(131).wrapping_add(seed) as u8)
        .collect()
}

struct Sink;

impl Actor for Sink {
    type Msg = ProbeMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.into(), GROUP.into(), vec![myself.get_cell()]);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Echo(wire, reply) => {
                // Decode and re-encode: the round trip exercises the codec both ways.
                if let Ok(p) = wire.decode()
                    && let Ok(back) = Cbor::encode(&p)
                {
                    let _ = reply.send(back);
                }
            }
            ProbeMsg::Raw(wire) => {
                println!("RAW_RECEIVED {}", wire.len());
            }
        }
        Ok(())
    }
}

fn parse_args() -> Result<ClusterConfig, String> {
    let mut config = ClusterConfig::default();
    let (mut cert, mut key, mut ca, mut server_name) = (None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let ms = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--name" => config.node_name = value()?,
            "--listen" => config.listen = value()?.parse().map_err(|e| format!("{e}"))?,
            "--cookie" => config.cookie = CookieSource::Value(value()?),
            "--cookie-file" => config.cookie = CookieSource::File(value()?.into()),
            "--seed" => config.seeds.push(value()?),
            "--advertise" => config.advertise = Some(value()?),
            "--heartbeat-interval-ms" => config.heartbeat_interval_ms = ms(value()?)?,
            "--heartbeat-deadline-ms" => config.heartbeat_deadline_ms = ms(value()?)?,
            "--handshake-timeout-ms" => config.handshake_timeout_ms = ms(value()?)?,
            "--backoff-min-ms" => config.backoff_min_ms = ms(value()?)?,
            "--backoff-max-ms" => config.backoff_max_ms = ms(value()?)?,
            "--max-frame-bytes" => config.max_frame_bytes = ms(value()?)?,
            "--tls-cert" => cert = Some(value()?),
            "--tls-key" => key = Some(value()?),
            "--tls-ca" => ca = Some(value()?),
            "--tls-name" => server_name = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    match (cert, key, ca, server_name) {
        (None, None, None, None) => {}
        (Some(c), Some(k), Some(a), Some(n)) => {
            config.tls = Some(TlsConfig {
                cert_chain: c.into(),
                private_key: k.into(),
                ca_certs: a.into(),
                server_name: n,
            })
        }
        _ => return Err("TLS needs --tls-cert, --tls-key, --tls-ca and --tls-name".into()),
    }
    Ok(config)
}

fn sink_on(cluster: &ClusterHandle, node: &str) -> Result<ActorRef<ProbeMsg>, String> {
    cluster
        .discovery()
        .actor_on::<ProbeMsg>(SCOPE, GROUP, node)
        .ok_or_else(|| format!("no-sink-on-{node}"))
}

async fn echo(
    cluster: &ClusterHandle,
    node: &str,
    bytes: usize,
    seq: u64,
) -> Result<Duration, String> {
    let sink = sink_on(cluster, node)?;
    let wire = Cbor::encode(&Payload {
        seq,
        data: pattern(seq, bytes),
    })
    .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let back = ractor::call_t!(sink, ProbeMsg::Echo, 5_000, wire).map_err(|e| format!("{e}"))?;
    let took = start.elapsed();
    let p = back.decode().map_err(|e| e.to_string())?;
    if p.seq != seq || p.data != pattern(seq, bytes) {
        return Err("echo-mismatch".into());
    }
    Ok(took)
}

async fn command(cluster: &ClusterHandle, line: &str, seq: &mut u64) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    *seq += 1;
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<usize>().ok());
    match (words.first().copied(), words.get(1).copied()) {
        (Some("QUIT"), _) => return false,
        (Some("ECHO"), Some(node)) => match echo(cluster, node, num(2).unwrap_or(16), *seq).await {
            Ok(t) => println!("ECHO_OK {node} {} {}", num(2).unwrap_or(16), t.as_micros()),
            Err(e) => println!("ECHO_ERR {node} {e}"),
        },
        (Some("RAW"), Some(node)) => {
            let bytes = num(2).unwrap_or(0);
            let sent = sink_on(cluster, node).and_then(|sink| {
                let wire = Cbor::encode_with_limit(
                    &Payload {
                        seq: *seq,
                        data: pattern(*seq, bytes),
                    },
                    usize::MAX,
                )
                .map_err(|e| e.to_string())?;
                sink.cast(ProbeMsg::Raw(wire)).map_err(|e| e.to_string())
            });
            match sent {
                Ok(()) => println!("RAW_SENT {node} {bytes}"),
                Err(e) => println!("RAW_ERR {node} {e}"),
            }
        }
        (Some("BENCH_ECHO"), Some(node)) => {
            let n = num(2).unwrap_or(1000).max(1);
            let bytes = num(3).unwrap_or(16);
            let mut times = Vec::with_capacity(n);
            for i in 0..n {
                match echo(cluster, node, bytes, *seq + i as u64).await {
                    Ok(t) => times.push(t.as_micros()),
                    Err(e) => {
                        println!("ECHO_ERR {node} {e}");
                        return true;
                    }
                }
            }
            *seq += n as u64;
            times.sort_unstable();
            let mean = times.iter().sum::<u128>() / times.len() as u128;
            println!(
                "BENCH_ECHO {node} {n} {bytes} p50_us={} p99_us={} mean_us={mean}",
                times[times.len() / 2],
                times[(times.len() * 99 / 100).min(times.len() - 1)]
            );
        }
        (Some("SEED"), Some(spec)) => match cluster.add_peer_address(spec) {
            Ok(()) => println!("SEED_OK {spec}"),
            Err(e) => println!("SEED_ERR {spec} {e}"),
        },
        _ => println!("UNKNOWN {line}"),
    }
    true
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("verisim-cluster-probe: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("RUST_LOG").is_some() {
        eprintln!("(set up tracing in your own binary; the probe prints events only)");
    }
    let name = config.node_name.clone();
    let (spec, cluster) = match verisim_cluster::cluster_subtree(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("verisim-cluster-probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tree = match SupervisorHandle::start(spec).await {
        Ok((tree, _)) => tree,
        Err(e) => {
            eprintln!("verisim-cluster-probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = Actor::spawn(None, Sink, ()).await {
        eprintln!("verisim-cluster-probe: cannot start sink: {e}");
        return ExitCode::FAILURE;
    }
    let mut events = match cluster.subscribe() {
        Ok(rx) => rx,
        Err(e) => {
            eprintln!("verisim-cluster-probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("READY {name} {}", cluster.listen_addr());
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                PeerEvent::Up { node, node_id } => println!("UP {node} {node_id}"),
                PeerEvent::Down { node, reason } => println!("DOWN {node} {reason}"),
                PeerEvent::HandshakeFailed { peer_addr } => {
                    println!("HANDSHAKE_FAILED {peer_addr}")
                }
                PeerEvent::DialFailed { addr, error } => {
                    println!("DIAL_FAILED {addr} {}", error.replace('\n', " "))
                }
            }
        }
    });

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut seq = 0;
    // Commands run one at a time; stdin closing (the test dropped us) ends the node.
    while let Ok(Some(line)) = lines.next_line().await {
        if !command(&cluster, &line, &mut seq).await {
            break;
        }
    }
    tree.stop().await;
    ExitCode::SUCCESS
}

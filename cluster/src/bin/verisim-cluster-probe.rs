//! Test and measurement probe: one cluster node per process, driven by lines on stdin, reporting
//! events as lines on stdout. The multi-process tests in `cluster/tests/` and the measurements in
//! `docs/cluster.md` use it; it is not part of a VeriSim node.
//!
//! Output lines (space-separated):
//! - `READY <name> <listen-addr>` once the node listens
//! - `UP <node> <node-id>`, `DOWN <node> <reason>`, `HANDSHAKE_FAILED <peer-addr>`,
//!   `DIAL_FAILED <addr> <error>`
//! - `ECHO_OK <node> <bytes> <micros>` / `ECHO_ERR <node> <error>`
//! - `BIG_OK <node> <bytes> <chunks> <micros>` / `BIG_ERR <node> <error>`
//! - `BIG_RECEIVED <transfer-id> <bytes> <verified>` on the receiving side
//! - `BENCH_ECHO <node> <n> <bytes> p50_us=<..> p99_us=<..> mean_us=<..>`
//!
//! Input lines: `ECHO <node> <bytes>`, `BIG <node> <bytes>`, `RAW <node> <bytes>` (one unchunked
//! message), `BENCH_ECHO <node> <n> <bytes>`, `QUIT`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use verisim_cluster::chunk::{self, Chunk, Progress, Reassembly};
use verisim_cluster::{Cbor, ClusterConfig, ClusterHandle, CookieSource, PeerEvent, TlsConfig};

const SCOPE: &str = "verisim.probe";
const GROUP: &str = "sink";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
    #[serde(with = "verisim_cluster::codec::bytes")]
    data: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Finished {
    transfer_id: u64,
    bytes: u64,
    verified: bool,
}

#[derive(RactorClusterMessage)]
enum ProbeMsg {
    #[rpc]
    Echo(Cbor<Payload>, RpcReplyPort<Cbor<Payload>>),
    Chunk(Cbor<Chunk>),
    #[rpc]
    Finish(u64, RpcReplyPort<Cbor<Finished>>),
    Raw(Cbor<Payload>),
}

fn pattern(transfer_id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(131).wrapping_add(transfer_id) as u8)
        .collect()
}

struct Sink;

#[derive(Default)]
struct SinkState {
    transfers: HashMap<u64, Result<Reassembly, String>>,
}

impl Actor for Sink {
    type Msg = ProbeMsg;
    type State = SinkState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.into(), GROUP.into(), vec![myself.get_cell()]);
        Ok(SinkState::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
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
            ProbeMsg::Chunk(wire) => {
                let chunk = match wire.decode() {
                    Ok(c) => c,
                    Err(e) => {
                        println!("CHUNK_ERR {e}");
                        return Ok(());
                    }
                };
                let id = chunk.transfer_id;
                match state.transfers.get_mut(&id) {
                    Some(Ok(r)) => {
                        if let Err(e) = r.accept(chunk) {
                            state.transfers.insert(id, Err(e.to_string()));
                        }
                    }
                    Some(Err(_)) => {}
                    None => {
                        let started = Reassembly::start(chunk, 1 << 30)
                            .map(|(r, _)| r)
                            .map_err(|e| e.to_string());
                        state.transfers.insert(id, started);
                    }
                }
            }
            ProbeMsg::Finish(id, reply) => {
                let (bytes, verified) = match state.transfers.remove(&id) {
                    Some(Ok(r)) if r.progress() == Progress::Complete => match r.finish() {
                        Ok(data) => (data.len() as u64, data == pattern(id, data.len())),
                        Err(_) => (0, false),
                    },
                    _ => (0, false),
                };
                println!("BIG_RECEIVED {id} {bytes} {verified}");
                if let Ok(w) = Cbor::encode(&Finished {
                    transfer_id: id,
                    bytes,
                    verified,
                }) {
                    let _ = reply.send(w);
                }
            }
            ProbeMsg::Raw(wire) => {
                println!("RAW_RECEIVED {}", wire.len());
            }
        }
        Ok(())
    }
}

struct Args {
    config: ClusterConfig,
    chunk_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut config = ClusterConfig::default();
    let mut chunk_bytes = chunk::DEFAULT_CHUNK_BYTES;
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
            "--chunk-bytes" => chunk_bytes = ms(value()?)? as usize,
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
    Ok(Args {
        config,
        chunk_bytes,
    })
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

async fn big(
    cluster: &ClusterHandle,
    node: &str,
    bytes: usize,
    chunk_bytes: usize,
    transfer_id: u64,
) -> Result<(usize, Duration), String> {
    let sink = sink_on(cluster, node)?;
    let data = pattern(transfer_id, bytes);
    let start = Instant::now();
    let chunks = chunk::split(transfer_id, &data, chunk_bytes).map_err(|e| e.to_string())?;
    let count = chunks.len();
    for c in chunks {
        let wire = Cbor::encode(&c).map_err(|e| e.to_string())?;
        sink.cast(ProbeMsg::Chunk(wire))
            .map_err(|e| e.to_string())?;
    }
    let done = ractor::call_t!(sink, ProbeMsg::Finish, 60_000, transfer_id)
        .map_err(|e| format!("{e}"))?
        .decode()
        .map_err(|e| e.to_string())?;
    let took = start.elapsed();
    if !done.verified || done.bytes != bytes as u64 {
        return Err(format!("not-verified bytes={}", done.bytes));
    }
    Ok((count, took))
}

async fn command(cluster: &ClusterHandle, line: &str, chunk_bytes: usize, seq: &mut u64) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    *seq += 1;
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<usize>().ok());
    match (words.first().copied(), words.get(1).copied()) {
        (Some("QUIT"), _) => return false,
        (Some("ECHO"), Some(node)) => match echo(cluster, node, num(2).unwrap_or(16), *seq).await {
            Ok(t) => println!("ECHO_OK {node} {} {}", num(2).unwrap_or(16), t.as_micros()),
            Err(e) => println!("ECHO_ERR {node} {e}"),
        },
        (Some("BIG"), Some(node)) => {
            let bytes = num(2).unwrap_or(0);
            match big(cluster, node, bytes, chunk_bytes, *seq).await {
                Ok((chunks, t)) => println!("BIG_OK {node} {bytes} {chunks} {}", t.as_micros()),
                Err(e) => println!("BIG_ERR {node} {e}"),
            }
        }
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
    let Args {
        config,
        chunk_bytes,
    } = match parse_args() {
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
    let cluster = match verisim_cluster::start_node(config).await {
        Ok(c) => c,
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
        if !command(&cluster, &line, chunk_bytes, &mut seq).await {
            break;
        }
    }
    cluster.shutdown().await;
    ExitCode::SUCCESS
}

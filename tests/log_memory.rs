//! Whole-system tests of what a log compaction frees, and of the raw-proposals admin switch (off
//! by default; when on, commands kept only for old logs are still refused).
//!
//! RSS is asserted only as a large relative drop with a wide margin (the freed log must show up as
//! at least half of its payload), never as a time or an absolute size.

mod support;

use std::time::Duration;

use support::{Cluster, Options, wait_for};
use verisim::registry::{ClientId, Command, NodeInfo, NodeName, Proposal, PublicKey, encode};

const ENTRIES: u64 = 20_000;
const PAYLOAD: usize = 1024;

fn post_cbor(http: std::net::SocketAddr, body: &[u8]) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(&format!("http://{http}/admin/proposals"))
        .header("content-type", "application/cbor")
        .send(body)
        .expect("POST /admin/proposals");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or_default())
}

fn rss(pid: nix::unistd::Pid) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

fn set_nodes(from: u64, n: u64) -> Vec<u8> {
    let info = "x".repeat(PAYLOAD);
    let batch: Vec<Proposal> = (from..from + n)
        .map(|i| Proposal {
            at_ms: 1,
            command: Command::SetNode {
                node: NodeName::new(format!("m{}", i % 64)).unwrap(),
                info: NodeInfo {
                    cluster_addr: info.clone(),
                    http_addr: format!("h{i}"),
                },
            },
        })
        .collect();
    encode(&batch)
}

#[test]
fn raw_proposals_are_refused_unless_switched_on() {
    let c = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    });
    let (status, body) = post_cbor(c.node(1).http.unwrap(), &set_nodes(0, 1));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "raw_proposals_disabled");
}

#[test]
fn compacting_the_log_gives_its_memory_back() {
    let c = Cluster::start(Options {
        nodes: 1,
        config: Some(
            "[admin]\nraw_proposals = true\n[snapshot]\nmax_entries = 1000000000\nmax_bytes = 100000000000\n"
                .into(),
        ),
        ..Options::default()
    });
    let http = c.node(1).http.unwrap();
    let (status, body) = post_cbor(http, b"\x01");
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_cbor")));
    // The attack: the legacy command that replaced any client's key, sent as a raw proposal.
    let legacy = encode(&vec![Proposal {
        at_ms: 1,
        command: Command::RegisterClient {
            client: ClientId::new("dev").unwrap(),
            public_key: PublicKey([7; 32]),
        },
    }]);
    let (status, body) = post_cbor(http, &legacy);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("legacy_command")),
        "{body}"
    );
    for from in (0..ENTRIES).step_by(1000) {
        let (status, body) = post_cbor(http, &set_nodes(from, 1000));
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), 1000);
        assert!(results.iter().all(|r| r["outcome"] == "NodeSet"), "{body}");
    }
    let before = rss(c.node(1).pid());
    let r = c.node(1).post("/admin/snapshot", None).expect("snapshot");
    assert!(r.ok(), "{r:?}");
    wait_for("the log to be compacted", Duration::from_secs(60), || {
        let s = c.node(1).consensus()?;
        (s["log"]["entries"].as_u64()? < ENTRIES / 2).then_some(())
    });
    let payload = ENTRIES * PAYLOAD as u64;
    // Trimming runs on a blocking thread just after the compaction: wait for its effect.
    let what = format!(
        "RSS to drop by half the log payload ({} KiB) from {} KiB",
        payload / 2048,
        before / 1024
    );
    let after = wait_for(&what, Duration::from_secs(20), || {
        let now = rss(c.node(1).pid());
        (now + payload / 2 < before).then_some(now)
    });
    eprintln!(
        "RSS before compaction {} KiB, after {} KiB ({} KiB of log payload)",
        before / 1024,
        after / 1024,
        payload / 1024
    );
}

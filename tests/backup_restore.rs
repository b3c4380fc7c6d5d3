//! Backup, restore and disaster recovery with real `verisim` processes: `verisim backup` from a
//! running cluster, `verisim backup verify`, `verisim restore` into a new one-node cluster that
//! another node then joins, damaged files refused without writing anything, the admin guard over
//! `GET /admin/backup`, and `verisim node --force-new-cluster` on the one survivor of a cluster
//! that lost its majority.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::entities::{client_of, entity_cluster_with, hexad, via};
use support::{Cluster, Options, wait_for};
use verisim_client::http::{Client, RetryPolicy};
use verisim_client::wire::{ClientId, EntityId, EntityView};

const LONG: Duration = Duration::from_secs(30);
const TOKEN: &str = "backup-test-admin-token-0123456789abcdef";

fn verisim(args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_verisim"));
    cmd.args(args)
        .env_remove("VERISIM_ADMIN_TOKEN")
        .env_remove("VERISIM_ADMIN_TOKEN_FILE")
        .env_remove("VERISIM_NODE")
        .env("VERISIM_LOG", "warn");
    if let Some(t) = token {
        cmd.env("VERISIM_ADMIN_TOKEN", t);
    }
    cmd.output().expect("run verisim")
}

/// `verisim restore` of `from` as node 1 into `data_dir`, with the source cluster's `config`.
fn restore(from: &Path, config: &Path, data_dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "restore",
        "--from",
        from.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--id",
        "1",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    verisim(&args, None)
}

fn ok_json(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn url(c: &Cluster, id: u64) -> String {
    format!("http://{}", c.node(id).http.expect("running"))
}

fn register(client: &Client, n: usize) -> Vec<EntityId> {
    (0..n)
        .map(|i| {
            let id = format!("bk-{i}");
            client
                .register(&hexad(&id, i as u64 + 1))
                .expect("register");
            EntityId::new(id).unwrap()
        })
        .collect()
}

/// What must survive a backup and restore: everything but where it is held (the placement, the
/// log index that last moved it, and which replica served each modality).
fn content(v: &EntityView) -> Value {
    let mut j = serde_json::to_value(v).unwrap();
    let o = j.as_object_mut().unwrap();
    o.remove("placement");
    o.remove("index");
    for m in ["graph", "vector", "tensor", "semantic"] {
        if let Some(view) = o.get_mut(m).and_then(Value::as_object_mut) {
            view.remove("replica");
        }
    }
    j
}

fn read_all(client: &Client, ids: &[EntityId]) -> Vec<Value> {
    ids.iter()
        .map(|id| content(&client.get(id, false).expect("read back")))
        .collect()
}

fn entity_opts(token: Option<&str>, extra: Option<&str>) -> Options {
    Options {
        admin_token: token.map(str::to_owned),
        config: extra.map(str::to_owned),
        ..Options::default()
    }
}

fn backup_file(c: &Cluster, name: &str) -> PathBuf {
    c.dir.path().join(name)
}

/// A way to damage a backup file's bytes.
type Damage = Box<dyn FnOnce(&mut Vec<u8>)>;

fn damaged(src: &Path, dst: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(src).unwrap();
    f(&mut b);
    std::fs::write(dst, b).unwrap();
}

#[test]
fn backup_restore_into_a_new_cluster_then_join_a_node() {
    let (mut c, client, identity) = entity_cluster_with(entity_opts(Some(TOKEN), None), 21);
    // VERISIM_BACKUP_ENTITIES=1000 measures a larger backup (the time and size are printed).
    let n = std::env::var("VERISIM_BACKUP_ENTITIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let ids = register(&client, n);
    let before = read_all(&client, &ids);

    // The route is behind the admin guard.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{}/admin/backup", url(&c, 2)))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = agent
        .get(format!("{}/admin/backup", url(&c, 2)))
        .header("authorization", "Bearer wrong")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let file = backup_file(&c, "cluster.vbak");
    let out = verisim(
        &[
            "backup",
            "--node",
            &url(&c, 2),
            "--out",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing_auth"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!file.exists(), "a refused backup leaves no file");

    // A backup from a follower or the leader alike: node 2.
    let started = Instant::now();
    let saved = ok_json(
        &verisim(
            &[
                "backup",
                "--node",
                &url(&c, 2),
                "--out",
                file.to_str().unwrap(),
                "--json",
            ],
            Some(TOKEN),
        ),
        "backup",
    );
    let took = started.elapsed();
    assert_eq!(saved["entities"], n as u64, "{saved}");
    assert_eq!(saved["items"], 4 * n as u64, "{saved}");
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(saved["bytes"], size);
    eprintln!(
        "backup of {n} entities: {size} bytes in {took:?} (download {} ms, verify {} ms)",
        saved["download_ms"], saved["verify_ms"]
    );
    assert!(!c.dir.path().join("cluster.vbak.partial").exists());
    let verified = ok_json(
        &verisim(
            &["backup", "verify", file.to_str().unwrap(), "--json"],
            None,
        ),
        "verify",
    );
    assert_eq!(verified["blake3"], saved["blake3"]);

    // Damaged copies are refused with a stable code, and write nothing.
    let config = c.dir.path().join("n1.toml");
    let fresh = tempfile::Builder::new()
        .prefix("verisim-restore-")
        .tempdir()
        .unwrap();
    let cases: [(&str, Damage); 3] = [
        (
            "flipped",
            Box::new(|b: &mut Vec<u8>| {
                let at = b.len() / 2;
                b[at] ^= 0x40;
            }),
        ),
        (
            "truncated",
            Box::new(|b: &mut Vec<u8>| {
                b.truncate(b.len() - 100);
            }),
        ),
        (
            "trailer",
            Box::new(|b: &mut Vec<u8>| {
                let at = b.len() - 20;
                b[at] ^= 1;
            }),
        ),
    ];
    for (name, f) in cases {
        let bad = fresh.path().join(format!("{name}.vbak"));
        damaged(&file, &bad, f);
        let out = verisim(&["backup", "verify", bad.to_str().unwrap()], None);
        assert!(!out.status.success(), "{name} verified");
        let dir = fresh.path().join(format!("data-{name}"));
        let out = restore(&bad, &config, &dir, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} restored");
        assert!(err.contains("backup_corrupt"), "{name}: {err}");
        assert!(
            !dir.exists(),
            "{name}: a refused restore wrote {}",
            dir.display()
        );
    }

    // Restore as a brand-new cluster: one node (id 1), another cookie, its own directory.
    let mut c2 = Cluster::configure(
        Options {
            nodes: 1,
            admin_token: Some(TOKEN.into()),
            ..Options::default()
        },
        "cookie-of-the-restored-cluster",
    );
    let target = c2.node(1).data_dir.clone();
    // Not into a data directory in use.
    let out = restore(&file, &config, &c.node(1).data_dir, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restore_target"));
    let started = Instant::now();
    let restored = ok_json(&restore(&file, &config, &target, &["--json"]), "restore");
    eprintln!(
        "restore of {n} entities: {:?} (verify {} ms, write {} ms)",
        started.elapsed(),
        restored["verify_ms"],
        restored["write_ms"]
    );
    // The old cluster goes away (its directory stays: the config and schema file live there).
    for id in 1..=3 {
        c.node_mut(id).kill9();
    }
    // The restored node loads the source cluster's [stores] configuration (the schema).
    let node = c2.node_mut(1);
    node.extra_args.push("--config".into());
    node.extra_args.push(config.display().to_string());
    c2.node_mut(1).start();
    c2.wait_leader(LONG);
    let client2 = client_of(&c2);
    let alice = ClientId::new("alice").unwrap();
    client2
        .open_window(&identity, &alice, Duration::from_secs(600))
        .expect("alice, restored with the registry, opens a window on the new cluster");
    assert_eq!(
        read_all(&client2, &ids),
        before,
        "every entity reads back identical"
    );
    let members = c2.node(1).get("/admin/members").unwrap().body;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "the old membership is gone: {members}"
    );
    // New writes commit.
    client2
        .register(&hexad("after-restore", 99))
        .expect("a write on the restored cluster");

    // Another node joins the restored cluster normally.
    let joiner = c2.add_joiner(2, 1);
    joiner.extra_args.push("--config".into());
    joiner.extra_args.push(config.display().to_string());
    c2.node_mut(2).start();
    c2.wait_voter(2, LONG);
    let on2 = via(&c2, 2, &client2);
    assert_eq!(read_all(&on2, &ids), before, "read through the joined node");
    wait_for("the rebalancer to place entities on n2", LONG, || {
        let p = c2.node(1).get("/admin/placement").ok()?.body;
        (p["misplaced"].as_u64()? == 0).then_some(())
    });
}

#[test]
fn force_new_cluster_recovers_a_cluster_from_one_survivor() {
    let (mut c, client, _identity) = entity_cluster_with(
        entity_opts(None, Some("[proxy]\ncommit_timeout_ms = 1500\n")),
        22,
    );
    let ids = register(&client, 15);
    let before = read_all(&client, &ids);
    // One attempt per call: a write without a quorum is answered, not retried for long.
    let on1 = via(&c, 1, &client).with_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });

    // The majority is lost.
    c.node_mut(2).kill9();
    c.node_mut(3).kill9();
    let refused = wait_for("n1 to refuse writes without a quorum", LONG, || {
        match on1.register(&hexad("no-quorum", 7)) {
            Err(e) if e.to_string().contains("no_quorum") => Some(e),
            _ => None,
        }
    });
    eprintln!("without a quorum: {refused}");

    // The survivor restarts as a new one-voter cluster, keeping its data.
    c.node_mut(1).kill9();
    c.node_mut(1).extra_args.push("--force-new-cluster".into());
    c.node_mut(1).start();
    let (leader, _) = c.wait_leader(LONG);
    assert_eq!(leader, 1);
    let log = std::fs::read_to_string(&c.node(1).log_path).unwrap();
    assert!(log.contains("FORCED A NEW CLUSTER"), "no loud log line");
    let status = c.node(1).consensus().unwrap();
    assert_eq!(status["membership"]["voters"], serde_json::json!([1]));

    let on1 = via(&c, 1, &client);
    assert_eq!(
        read_all(&on1, &ids),
        before,
        "every committed entity survived"
    );
    on1.register(&hexad("after-recovery", 8))
        .expect("new writes commit");

    // A restart with the flag still set changes nothing more (the node already is the only voter).
    c.node_mut(1).terminate();
    c.node_mut(1).start();
    c.wait_leader(LONG);

    // New nodes join it normally.
    c.node_mut(1)
        .extra_args
        .retain(|a| a != "--force-new-cluster");
    c.add_joiner(4, 1);
    c.node_mut(4).start();
    c.wait_voter(4, LONG);
    let on4 = via(&c, 4, &client);
    assert_eq!(read_all(&on4, &ids), before);
}

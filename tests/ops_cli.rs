//! Whole-system tests of the operator CLI (`verisim status|tree|members|restart|terminate|kill|
//! snapshot`, docs/operations.md): real node processes, the CLI run as an operator runs it, with
//! the admin token from a file.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Cluster, Options, wait_for};

const LONG: Duration = Duration::from_secs(30);
const BIN: &str = env!("CARGO_BIN_EXE_verisim");
const TOKEN: &str = "ops-cli-test-token-0123456789abcdef";

/// `verisim <args> --node <n1's URL>` with the admin token in a file: (exit success, stdout,
/// stderr).
fn run(c: &Cluster, args: &[&str]) -> (bool, String, String) {
    let token = c.dir.path().join("admin-token");
    if !token.exists() {
        std::fs::write(&token, TOKEN).expect("token file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))
                .expect("chmod token");
        }
    }
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--node")
        .arg(format!("http://{}", c.node(1).http.expect("n1 running")))
        .env_remove("VERISIM_ADMIN_TOKEN")
        .env("VERISIM_ADMIN_TOKEN_FILE", &token)
        .output()
        .expect("run verisim");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(c: &Cluster, args: &[&str]) -> String {
    let (success, out, err) = run(c, args);
    assert!(success, "verisim {args:?} failed: {err}\n{out}");
    out
}

fn json(c: &Cluster, args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(c, &a)).unwrap_or_else(|e| panic!("verisim {args:?}: {e}"))
}

/// The child `id` of a tree answer, at any depth.
fn child<'a>(tree: &'a Value, id: &str) -> Option<&'a Value> {
    for c in tree["children"].as_array()? {
        if c["id"] == id {
            return Some(c);
        }
        if let Some(found) = c.get("subtree").and_then(|s| child(s, id)) {
            return Some(found);
        }
    }
    None
}

#[test]
fn an_operator_sees_every_member_and_restarts_terminates_and_kills_through_the_cli() {
    let c = Cluster::start(Options {
        admin_token: Some(TOKEN.into()),
        ..Options::default()
    });
    let (leader, _) = c.wait_leader(LONG);

    // Every node records its addresses once it can commit: members lists all three, from n1.
    let members = wait_for("every member's addresses", LONG, || {
        let m = json(&c, &["members"]).remove(0)["answer"].clone();
        let list = m["members"].as_array()?.clone();
        (list.len() == 3 && list.iter().all(|x| x["http_addr"].is_string())).then_some(m)
    });
    for n in 1..=3u64 {
        let x = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == n)
            .unwrap_or_else(|| panic!("n{n} missing: {members}"));
        assert_eq!(x["role"], "voter");
        assert_eq!(
            x["http_addr"].as_str(),
            Some(c.node(n).http.unwrap().to_string().as_str())
        );
    }
    let table = ok(&c, &["members"]);
    assert!(table.contains("voter (leader)"), "{table}");

    // status --cluster: one row per member, the leader among them, no lag once applied.
    let commit = c.leader_commit();
    for n in 1..=3 {
        c.wait_applied(n, commit, LONG);
    }
    let s = json(&c, &["status", "--cluster"]);
    assert_eq!(s.len(), 3, "{s:?}");
    let roles: Vec<String> = s
        .iter()
        .map(|a| {
            a["answer"]["consensus"]["role"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        roles.iter().filter(|r| *r == "Leader").count(),
        1,
        "{roles:?}"
    );
    let table = ok(&c, &["status", "--cluster"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("NODE"), "{table}");
    assert!(lines[0].ends_with("LAST-CONTACT"), "{table}");
    assert_eq!(
        lines[1..].iter().filter(|l| l.ends_with("leader")).count(),
        1,
        "{table}"
    );
    // The leader heard each follower's heartbeat a moment ago.
    assert_eq!(
        lines[1..].iter().filter(|l| l.ends_with(" ms")).count(),
        2,
        "{table}"
    );

    // kill: the supervisor restarts the store actor; tree shows the restart.
    ok(&c, &["kill", "verisim.store.vector"]);
    let t = wait_for("the vector store restarted", LONG, || {
        let t = json(&c, &["tree"]).remove(0)["answer"].clone();
        (child(&t, "vector")?["restart_count"] == 1).then_some(t)
    });
    assert_eq!(child(&t, "vector").unwrap()["state"], "running");
    let drawn = ok(&c, &["tree"]);
    assert!(drawn.contains("vector  [running] restarts 1"), "{drawn}");

    // terminate: stopped and kept; restart brings it back; terminate --delete removes it.
    ok(&c, &["terminate", "stores/tensor"]);
    let t = json(&c, &["tree"]).remove(0)["answer"].clone();
    assert_eq!(child(&t, "tensor").unwrap()["state"], "stopped", "{t}");
    ok(&c, &["restart", "stores/tensor"]);
    let t = json(&c, &["tree"]).remove(0)["answer"].clone();
    assert_eq!(child(&t, "tensor").unwrap()["state"], "running", "{t}");
    ok(&c, &["terminate", "--delete", "stores/semantic"]);
    let t = json(&c, &["tree"]).remove(0)["answer"].clone();
    assert!(child(&t, "semantic").is_none(), "{t}");
    let (success, _, err) = run(&c, &["restart", "stores/semantic"]);
    assert!(!success && err.contains("unknown_path"), "{err}");

    // snapshot on every member.
    let snaps = json(&c, &["snapshot", "--cluster"]);
    assert_eq!(snaps.len(), 3);
    assert!(snaps.iter().all(|a| a.get("error").is_none()), "{snaps:?}");

    // Without the token: refused, a non-zero exit.
    let out = std::process::Command::new(BIN)
        .args(["status", "--node"])
        .arg(format!("http://{}", c.node(leader).http.unwrap()))
        .env_remove("VERISIM_ADMIN_TOKEN")
        .env_remove("VERISIM_ADMIN_TOKEN_FILE")
        .output()
        .expect("run verisim");
    assert!(!out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("401"), "{shown}");
}

/// A member that does not answer is shown as such, and the command fails.
#[test]
fn status_of_the_cluster_shows_a_stopped_member_and_exits_non_zero() {
    let mut c = Cluster::start(Options {
        admin_token: Some(TOKEN.into()),
        ..Options::default()
    });
    wait_for("every member's addresses", LONG, || {
        let m = json(&c, &["members"]).remove(0)["answer"].clone();
        let list = m["members"].as_array()?.clone();
        list.iter()
            .all(|x| x["http_addr"].is_string())
            .then_some(())
    });
    let n3 = c.node(3).http.expect("n3 running");
    let health = |addr: std::net::SocketAddr| {
        let out = std::process::Command::new(BIN)
            .args(["health", "--timeout", "5", "--node"])
            .arg(format!("http://{addr}"))
            .env_remove("VERISIM_ADMIN_TOKEN")
            .env_remove("VERISIM_ADMIN_TOKEN_FILE")
            .output()
            .expect("run verisim health");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // The health check needs no token: what a compose file or a probe runs.
    let (ready, said) = health(n3);
    assert!(ready && said.contains("is ready: leader n"), "{said}");
    c.node_mut(3).kill9();
    let (ready, said) = health(n3);
    assert!(!ready && said.contains("is not ready"), "{said}");
    let (success, out, err) = run(&c, &["status", "--cluster"]);
    assert!(!success, "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("unreachable"))
        .unwrap_or_else(|| panic!("no unreachable row: {out}"));
    assert!(row.starts_with(&format!("http://{n3}")), "{row}");
    assert!(err.contains("failed on"), "{err}");
}

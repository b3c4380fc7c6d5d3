//! The operator commands, on the admin API: `verisim status|tree|members|restart|terminate|kill|
//! snapshot|drift|placement`. Each asks one node (`--node URL`, several with commas), or with `--cluster` every
//! member the first answering node knows (their HTTP addresses as recorded in the registry), and
//! merges the answers: readable tables by default, `--json` for scripts. A node that does not
//! answer is shown as such, and the command then exits non-zero.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use verisim_client::http::{Client, RetryPolicy};

use super::AdminAuth;
use super::client::admin_client;

/// `verisim <ops command>`.
#[derive(Subcommand, Debug)]
pub enum OpsCmd {
    /// Raft status per node: role, term, leader, commit and applied index, lag behind the
    /// leader, snapshot index, log entries and bytes, peers connected.
    Status(Target),
    /// The supervision tree of each node, with states and restart counts.
    Tree(Target),
    /// The members (voters and learners) with the addresses they recorded, and the leader.
    Members(Target),
    /// Restart a child of the supervision tree by path (`stores/vector`, `registry`).
    Restart {
        /// The child's path in the tree.
        path: String,
        #[command(flatten)]
        target: Target,
    },
    /// Terminate a child (it stays in the tree, stopped, until restarted); `--delete` then
    /// removes it from the tree.
    Terminate {
        /// The child's path in the tree.
        path: String,
        /// Remove the terminated child from the tree (OTP's `delete_child`).
        #[arg(long)]
        delete: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Kill a registered actor (`verisim.store.vector`, `verisim.consensus`): its supervisor
    /// restarts it, as after a crash.
    Kill {
        /// The actor's registered name.
        actor: String,
        #[command(flatten)]
        target: Target,
    },
    /// Take a registry snapshot now.
    Snapshot(Target),
    /// The drift checker (each node checks its own stores): run a pass, or show the last one.
    #[command(subcommand)]
    Drift(DriftOp),
    /// Where entities live: what is left to move after a join or a removal, or a rebalancing
    /// round now (on the leader).
    #[command(subcommand)]
    Placement(PlacementOp),
    /// Whether one node is ready (`GET /readyz`: it knows a leader and its stores run); exits 0
    /// when it is, 1 otherwise. Needs no token: for health checks (compose, systemd, probes).
    Health {
        /// The node's HTTP address.
        #[arg(
            long = "node",
            env = "VERISIM_NODE",
            default_value = "http://127.0.0.1:8100"
        )]
        node: String,
        /// How long to wait for the answer, in seconds.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

/// `verisim drift ...`.
#[derive(Subcommand, Debug)]
pub enum DriftOp {
    /// Run one check-and-repair pass now and print its report when it is done.
    Check {
        /// Compare and report only; repair nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The last pass and the running totals.
    Status(Target),
}

/// `verisim placement ...`.
#[derive(Subcommand, Debug)]
pub enum PlacementOp {
    /// How many entities are placed elsewhere than they should be (`misplaced`), with the
    /// rebalancer's last round and totals.
    Status(Target),
    /// Run one rebalancing round now; the node must be the leader.
    Rebalance(Target),
}

/// Which nodes, and how to answer.
#[derive(Args, Debug)]
pub struct Target {
    /// The node's HTTP address (several separated by commas).
    #[arg(
        long = "node",
        env = "VERISIM_NODE",
        value_delimiter = ',',
        required = true
    )]
    pub nodes: Vec<String>,
    /// Every member the first answering node knows, instead of the nodes given.
    #[arg(long)]
    pub cluster: bool,
    /// Print JSON (an array of `{"node", "answer"}` or `{"node", "error"}`).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminAuth,
}

/// One node's answer.
struct Answer {
    node: String,
    result: Result<Value, String>,
}

/// Runs an operator command; `Err` when any node failed (after printing what the others said).
pub fn run(cmd: OpsCmd) -> Result<(), String> {
    if let OpsCmd::Health { node, timeout } = &cmd {
        return health(node, Duration::from_secs(*timeout));
    }
    let (target, method, path, render): (&Target, &str, String, Render) = match &cmd {
        OpsCmd::Status(t) => (t, "GET", "/admin/status".into(), status_table),
        OpsCmd::Tree(t) => (t, "GET", "/admin/tree".into(), tree_text),
        OpsCmd::Members(t) => (t, "GET", "/admin/members".into(), members_table),
        OpsCmd::Restart { path, target } => {
            (target, "POST", format!("/admin/restart/{path}"), lines)
        }
        OpsCmd::Terminate { path, target, .. } => {
            (target, "POST", format!("/admin/terminate/{path}"), lines)
        }
        OpsCmd::Kill { actor, target } => (target, "POST", format!("/admin/kill/{actor}"), lines),
        OpsCmd::Snapshot(t) => (t, "POST", "/admin/snapshot".into(), lines),
        OpsCmd::Drift(DriftOp::Check { dry_run, target }) => {
            let query = if *dry_run { "?repair=false" } else { "" };
            (
                target,
                "POST",
                format!("/admin/drift/check{query}"),
                drift_table,
            )
        }
        OpsCmd::Drift(DriftOp::Status(t)) => (t, "GET", "/admin/drift".into(), drift_status_table),
        OpsCmd::Placement(PlacementOp::Status(t)) => {
            (t, "GET", "/admin/placement".into(), placement_table)
        }
        OpsCmd::Placement(PlacementOp::Rebalance(t)) => {
            (t, "POST", "/admin/placement/rebalance".into(), lines)
        }
        OpsCmd::Health { .. } => unreachable!("answered above"),
    };
    let nodes = nodes_of(target)?;
    let mut answers: Vec<Answer> = nodes
        .iter()
        .map(|node| Answer {
            node: node.clone(),
            result: ask(node, &target.admin, method, &path),
        })
        .collect();
    if let OpsCmd::Terminate {
        path, delete: true, ..
    } = &cmd
    {
        for a in answers.iter_mut().filter(|a| a.result.is_ok()) {
            a.result = ask(
                &a.node,
                &target.admin,
                "DELETE",
                &format!("/admin/children/{path}"),
            );
        }
    }
    let text = if target.json {
        let v: Vec<Value> = answers
            .iter()
            .map(|a| match &a.result {
                Ok(v) => json!({"node": a.node, "answer": v}),
                Err(e) => json!({"node": a.node, "error": e}),
            })
            .collect();
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    } else {
        render(&answers)
    };
    print_out(&text)?;
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|a| a.result.as_ref().err().map(|e| format!("{}: {e}", a.node)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed on {}", failed.join("; ")))
    }
}

type Render = fn(&[Answer]) -> String;

/// `verisim health`: one attempt at `/readyz`, no token.
fn health(node: &str, timeout: Duration) -> Result<(), String> {
    let client =
        admin_client(&[node.to_owned()], &AdminAuth::default())?.with_policy(RetryPolicy {
            max_attempts: 1,
            request_timeout: timeout,
            ..RetryPolicy::default()
        });
    let answer = client
        .admin("GET", "/readyz", None)
        .map_err(|e| format!("{node} is not ready: {e}"))?;
    print_out(&format!(
        "{node} is ready: leader n{}, applied index {}",
        answer["leader"], answer["applied_index"]
    ))
}

fn print_out(text: &str) -> Result<(), String> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing the answer: {e}"))
        }
        _ => Ok(()),
    }
}

/// An admin client of one node, one attempt: another node is no substitute. Drift passes and
/// rebalancing rounds may take long (a wiped replica is refilled at the repair rate); the rest is
/// answered within the admin API's own bounds.
fn one_node(node: &str, admin: &AdminAuth, path: &str) -> Result<Client, String> {
    let long = path.starts_with("/admin/drift/check") || path == "/admin/placement/rebalance";
    Ok(
        admin_client(&[node.to_owned()], admin)?.with_policy(RetryPolicy {
            max_attempts: 1,
            request_timeout: Duration::from_secs(if long { 3600 } else { 150 }),
            ..RetryPolicy::default()
        }),
    )
}

fn ask(node: &str, admin: &AdminAuth, method: &str, path: &str) -> Result<Value, String> {
    one_node(node, admin, path)?
        .admin(method, path, None)
        .map_err(|e| e.to_string())
}

/// The nodes given, or with `--cluster` the members the first answering one lists (in the scheme
/// of the node given: `https://` stays `https://`).
fn nodes_of(t: &Target) -> Result<Vec<String>, String> {
    if !t.cluster {
        return Ok(t.nodes.clone());
    }
    let mut last = String::new();
    for node in &t.nodes {
        match ask(node, &t.admin, "GET", "/admin/members") {
            Ok(m) => {
                let scheme = if node.starts_with("https://") {
                    "https"
                } else {
                    "http"
                };
                let mut out = Vec::new();
                for member in m["members"].as_array().into_iter().flatten() {
                    match member["http_addr"].as_str() {
                        Some(addr) => out.push(format!("{scheme}://{addr}")),
                        None => {
                            return Err(format!(
                                "member {} has not recorded its address yet (it records it once \
                                 it can commit); ask it with --node",
                                member["name"]
                            ));
                        }
                    }
                }
                return Ok(out);
            }
            Err(e) => last = format!("{node}: {e}"),
        }
    }
    Err(format!("no node listed the members: {last}"))
}

/// Fixed-width columns, the header first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status_table(answers: &[Answer]) -> String {
    // Lag is counted against the highest commit index any answering node reports (the leader's,
    // when it answered).
    let top = answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok())
        .filter_map(|s| s["consensus"]["commit_index"].as_u64())
        .max()
        .unwrap_or(0);
    // Last contact as the leader saw it: how long ago each member's last heartbeat reached it.
    let leader_view = answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok())
        .find(|s| s["consensus"]["role"] == "Leader")
        .map(|s| s["last_contact_ms"].clone());
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|a| match &a.result {
            Ok(s) => {
                let c = &s["consensus"];
                let applied = c["applied_index"].as_u64().unwrap_or(0);
                let contact = match (&leader_view, c["role"] == "Leader") {
                    (_, true) => "leader".to_owned(),
                    (Some(v), false) => v[format!("n{}", num(&s["id"]))]
                        .as_u64()
                        .map_or("-".into(), |ms| format!("{ms} ms")),
                    (None, false) => "-".into(),
                };
                vec![
                    a.node.clone(),
                    num(&s["id"]),
                    num(&c["role"]).to_lowercase(),
                    num(&c["term"]),
                    num(&c["leader"]),
                    num(&c["commit_index"]),
                    num(&c["applied_index"]),
                    top.saturating_sub(applied).to_string(),
                    num(&c["snapshot_index"]),
                    num(&c["log"]["entries"]),
                    num(&c["log"]["bytes"]),
                    s["peers_up"].as_array().map_or(0, Vec::len).to_string(),
                    contact,
                ]
            }
            Err(e) => {
                let mut r = vec![a.node.clone(), "-".into(), format!("unreachable: {e}")];
                r.resize(13, "-".into());
                r
            }
        })
        .collect();
    table(
        &[
            "NODE",
            "ID",
            "ROLE",
            "TERM",
            "LEADER",
            "COMMIT",
            "APPLIED",
            "LAG",
            "SNAPSHOT",
            "LOG-ENTRIES",
            "LOG-BYTES",
            "PEERS-UP",
            "LAST-CONTACT",
        ],
        &rows,
    )
}

fn members_table(answers: &[Answer]) -> String {
    answers
        .iter()
        .map(|a| match &a.result {
            Ok(m) => {
                let leader = m["leader"].as_u64();
                let rows: Vec<Vec<String>> = m["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| {
                        let lead = x["id"].as_u64() == leader && leader.is_some();
                        vec![
                            num(&x["id"]),
                            num(&x["name"]),
                            format!("{}{}", num(&x["role"]), if lead { " (leader)" } else { "" }),
                            num(&x["http_addr"]),
                            num(&x["cluster_addr"]),
                        ]
                    })
                    .collect();
                format!(
                    "as seen by {}:\n{}",
                    a.node,
                    table(&["ID", "NAME", "ROLE", "HTTP", "CLUSTER"], &rows)
                )
            }
            Err(e) => format!("{}: unreachable: {e}", a.node),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn tree_text(answers: &[Answer]) -> String {
    answers
        .iter()
        .map(|a| match &a.result {
            Ok(t) => {
                let mut out = format!("{}\n", a.node);
                draw(t, "", &mut out);
                out.trim_end().to_owned()
            }
            Err(e) => format!("{}: unreachable: {e}", a.node),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A supervisor's policy: `(strategy, intensity restarts in period ms)`.
fn policy(node: &Value) -> String {
    format!(
        "({}, {} restarts in {} ms)",
        num(&node["strategy"]),
        num(&node["intensity"]),
        num(&node["period_ms"]),
    )
}

/// The root supervisor's line, then its children, drawn like `tree(1)`: each with its state,
/// restarts and last failure; a child supervisor with its policy, then its own children.
fn draw(node: &Value, indent: &str, out: &mut String) {
    if indent.is_empty() {
        out.push_str(&format!("{} {}\n", num(&node["name"]), policy(node)));
    }
    let children = node["children"].as_array().cloned().unwrap_or_default();
    for (k, c) in children.iter().enumerate() {
        let (branch, next) = if k + 1 == children.len() {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let failure = c["last_failure"]
            .as_str()
            .map(|f| format!(", last failure: {f}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{indent}{branch}{}  [{}] restarts {}{failure}",
            num(&c["id"]),
            num(&c["state"]),
            num(&c["restart_count"]),
        ));
        match c.get("subtree") {
            Some(sub) if !sub.is_null() => {
                out.push_str(&format!("  {}\n", policy(sub)));
                draw(sub, &format!("{indent}{next}"), out);
            }
            _ => out.push('\n'),
        }
    }
}

/// A row per node of a drift pass report.
fn drift_table(answers: &[Answer]) -> String {
    const FIELDS: [&str; 10] = [
        "applied_index",
        "items_checked",
        "drifted",
        "missing",
        "stale",
        "orphans",
        "repaired",
        "orphans_removed",
        "unrepaired",
        "bytes_fetched",
    ];
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|a| {
            row(a, |r| {
                let mut cells: Vec<String> = FIELDS.iter().map(|f| num(&r[*f])).collect();
                cells.push(format!("{} ms", num(&r["duration_ms"])));
                cells
            })
        })
        .collect();
    table(
        &[
            "NODE",
            "APPLIED",
            "CHECKED",
            "DRIFTED",
            "MISSING",
            "STALE",
            "ORPHANS",
            "REPAIRED",
            "ORPHANS-REMOVED",
            "UNREPAIRED",
            "BYTES-FETCHED",
            "TOOK",
        ],
        &rows,
    )
}

/// A row per node: its last drift pass and its totals.
fn drift_status_table(answers: &[Answer]) -> String {
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|a| {
            row(a, |s| {
                let (t, last) = (&s["totals"], &s["last"]);
                vec![
                    num(&t["passes"]),
                    num(&t["failed_passes"]),
                    num(&t["repaired"]),
                    num(&t["orphans_removed"]),
                    num(&last["drifted"]),
                    num(&last["applied_index"]),
                    num(&s["last_error"]),
                ]
            })
        })
        .collect();
    table(
        &[
            "NODE",
            "PASSES",
            "FAILED",
            "REPAIRED",
            "ORPHANS-REMOVED",
            "LAST-DRIFTED",
            "LAST-APPLIED",
            "LAST-ERROR",
        ],
        &rows,
    )
}

/// A row per node: how many entities it sees misplaced, and its rebalancer's totals.
fn placement_table(answers: &[Answer]) -> String {
    let rows: Vec<Vec<String>> = answers
        .iter()
        .map(|a| {
            row(a, |p| {
                let t = &p["totals"];
                vec![
                    num(&p["replicas"]),
                    p["voters"]
                        .as_array()
                        .map(|v| v.iter().map(num).collect::<Vec<_>>().join(","))
                        .unwrap_or_default(),
                    num(&p["entities"]),
                    num(&p["misplaced"]),
                    num(&t["rounds"]),
                    num(&t["items_copied"]),
                    num(&t["narrowed"]),
                    num(&t["items_dropped"]),
                ]
            })
        })
        .collect();
    table(
        &[
            "NODE",
            "REPLICAS",
            "VOTERS",
            "ENTITIES",
            "MISPLACED",
            "ROUNDS",
            "COPIED",
            "NARROWED",
            "DROPPED",
        ],
        &rows,
    )
}

/// A node's row: the node, then `cells` of its answer, or why there is none.
fn row(a: &Answer, cells: impl Fn(&Value) -> Vec<String>) -> Vec<String> {
    let mut r = vec![a.node.clone()];
    match &a.result {
        Ok(v) => r.extend(cells(v)),
        Err(e) => r.push(format!("unreachable: {e}")),
    }
    r
}

/// One line per node: what it answered.
fn lines(answers: &[Answer]) -> String {
    answers
        .iter()
        .map(|a| match &a.result {
            Ok(v) => format!("{}: {v}", a.node),
            Err(e) => format!("{}: failed: {e}", a.node),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_drawn_with_states_restarts_and_failures() {
        let t = json!({
            "name": "node", "strategy": "rest_for_one", "intensity": 10, "period_ms": 60000,
            "children": [
                {"id": "cluster", "state": "running", "restart_count": 0},
                {"id": "stores", "state": "running", "restart_count": 1, "subtree": {
                    "name": "stores", "strategy": "one_for_one", "intensity": 10, "period_ms": 60000,
                    "children": [
                        {"id": "graph", "state": "running", "restart_count": 0},
                        {"id": "vector", "state": "stopped", "restart_count": 2,
                         "last_failure": "killed"}
                    ]}},
                {"id": "drift", "state": "restarting", "restart_count": 3}
            ]
        });
        let text = tree_text(&[Answer {
            node: "http://n1".into(),
            result: Ok(t),
        }]);
        let want = "\
http://n1
node (rest_for_one, 10 restarts in 60000 ms)
├── cluster  [running] restarts 0
├── stores  [running] restarts 1  (one_for_one, 10 restarts in 60000 ms)
│   ├── graph  [running] restarts 0
│   └── vector  [stopped] restarts 2, last failure: killed
└── drift  [restarting] restarts 3";
        assert_eq!(text, want);
    }

    #[test]
    fn a_drift_report_is_a_row_and_a_failed_node_says_why() {
        let report = json!({"applied_index": 40, "items_checked": 48, "drifted": 4, "missing": 4,
            "stale": 0, "orphans": 0, "repaired": 4, "orphans_removed": 0, "unrepaired": 0,
            "bytes_fetched": 2304, "duration_ms": 17});
        let text = drift_table(&[
            Answer {
                node: "a".into(),
                result: Ok(report),
            },
            Answer {
                node: "b".into(),
                result: Err("503 drift_check_failed".into()),
            },
        ]);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[0][..4],
            ["NODE", "APPLIED", "CHECKED", "DRIFTED"],
            "{text}"
        );
        assert_eq!(
            rows[1],
            [
                "a", "40", "48", "4", "4", "0", "0", "4", "0", "0", "2304", "17", "ms"
            ],
            "{text}"
        );
        assert_eq!(rows[2][..2], ["b", "unreachable:"], "{text}");
    }

    #[test]
    fn status_rows_show_lag_behind_the_highest_commit_and_unreachable_nodes() {
        let s = |id: u64, role: &str, commit: u64, applied: u64| {
            json!({"id": id, "peers_up": ["n2", "n3"], "last_contact_ms": {"n2": 40, "n3": 7},
                "consensus": {
                "role": role, "term": 4, "leader": 1, "commit_index": commit,
                "applied_index": applied, "snapshot_index": 0,
                "log": {"entries": applied, "bytes": 10 * applied}}})
        };
        let text = status_table(&[
            Answer {
                node: "a".into(),
                result: Ok(s(1, "Leader", 50, 50)),
            },
            Answer {
                node: "b".into(),
                result: Ok(s(2, "Follower", 48, 45)),
            },
            Answer {
                node: "c".into(),
                result: Err("connection refused".into()),
            },
        ]);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("NODE  ID  ROLE"), "{text}");
        assert!(
            rows[1].contains("leader") && rows[1].contains(" 0  "),
            "{text}"
        );
        let b: Vec<&str> = rows[2].split_whitespace().collect();
        assert_eq!(
            &b[..8],
            ["b", "2", "follower", "4", "1", "48", "45", "5"],
            "{text}"
        );
        assert!(
            rows[3].contains("unreachable: connection refused"),
            "{text}"
        );
        // The leader's view of each member's last heartbeat.
        assert!(rows[1].ends_with("leader"), "{text}");
        assert!(rows[2].ends_with("40 ms"), "{text}");
    }
}

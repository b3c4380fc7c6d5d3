//! The web console at `/console`, in a real headless Chromium over the DevTools protocol: a
//! 3-node cluster with an admin token; signing in renders every node's supervision tree and the
//! members table; a restart button, once confirmed, restarts the child on its node (here another
//! node than the one serving the page) and the restart shows in the event list; a wrong token
//! shows the sign-in error and no data.
//!
//! Without Chromium (`chromium` on the `PATH`, or `$VERISIM_CHROMIUM`) the browser part is
//! skipped with a loud message, unless `VERISIM_REQUIRE_CHROMIUM=1` (CI sets it when it could
//! install Chromium), which makes that a failure. `VERISIM_SCREENSHOTS=<dir>` saves screenshots
//! of the signed-in console (its top, and its event list) there.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::browser::{Browser, find_chromium};
use support::{Cluster, Node, Options, restart_count, wait_for};

const TOKEN: &str = "console-test-admin-token-0123456789";
const LONG: Duration = Duration::from_secs(60);

fn restarts(node: &Node, child: &str) -> u64 {
    let r = node.get("/admin/tree").expect("tree request");
    restart_count(&r.body, child).unwrap_or_else(|| panic!("no `{child}` in the tree: {r:?}"))
}

fn chromium_or_skip() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        if std::env::var("VERISIM_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("VERISIM_REQUIRE_CHROMIUM=1 but no chromium on the PATH (or $VERISIM_CHROMIUM)");
        }
        eprintln!(
            "!!! SKIPPED: chromium not found (install Debian's `chromium` or set \
             VERISIM_CHROMIUM); the web console was not tested in a browser !!!"
        );
    }
    found
}

fn screenshot(b: &mut Browser, name: &str) {
    let Some(dir) = std::env::var_os("VERISIM_SCREENSHOTS") else {
        return;
    };
    let png = b.screenshot().expect("screenshot");
    let path = PathBuf::from(dir).join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
}

/// `expr` as a JavaScript string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

#[test]
fn the_console_shows_every_node_restarts_a_child_and_refuses_a_wrong_token() {
    let c = Cluster::start(Options {
        nodes: 3,
        admin_token: Some(TOKEN.into()),
        ..Options::default()
    });
    let n1 = c.node(1);
    // Every member has recorded its HTTP address (what the overview fans out to).
    wait_for("every member's HTTP address", LONG, || {
        let m = n1.get("/admin/members").ok()?;
        let members = m.body["members"].as_array()?;
        (members.len() == 3 && members.iter().all(|x| x["http_addr"].is_string())).then_some(())
    });

    // The assets: open, embedded, with a strict policy; the data behind the token.
    for (path, ty) in [
        ("/console", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
    ] {
        let r = n1
            .request("GET", path, &[("authorization", String::new())], b"")
            .expect("asset request");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.header("content-type").is_some_and(|t| t.starts_with(ty)),
            "{r:?}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
    }
    let open = n1
        .request(
            "GET",
            "/admin/overview",
            &[("authorization", String::new())],
            b"",
        )
        .expect("overview request");
    assert_eq!(open.status, 401, "{open:?}");
    let ov = n1.get("/admin/overview").expect("overview request");
    assert!(ov.ok(), "{ov:?}");
    let nodes = ov.body["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{ov:?}");
    for n in nodes {
        assert!(n.get("error").is_none(), "{n}");
        assert!(n["tree"]["children"].is_array(), "{n}");
        assert!(n["status"]["consensus"]["commit_index"].is_u64(), "{n}");
    }

    // The forwarding route: guarded like every admin route, an unknown member is refused
    // before anything is sent, and a bad path comes back with the member's own code.
    let forged = n1
        .request(
            "POST",
            "/admin/nodes/n2/restart/stores/vector",
            &[("authorization", "Bearer not-the-admin-token".to_string())],
            b"",
        )
        .expect("forward request");
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.code(), Some("forbidden"), "{forged:?}");
    let unknown = n1
        .post("/admin/nodes/n9/restart/stores/vector", None)
        .expect("forward request");
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.code(), Some("unknown_node"), "{unknown:?}");
    let bad_path = n1
        .post("/admin/nodes/n2/restart/no/such/child", None)
        .expect("forward request");
    assert_eq!(bad_path.status, 404, "{bad_path:?}");
    assert_eq!(bad_path.code(), Some("unknown_path"), "{bad_path:?}");

    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let mut b = Browser::start(&chromium, 1200, 800).expect("chromium starts");
    let url = format!("http://{}/console", n1.http.expect("n1 listens"));

    // A wrong token: the sign-in error, and no data anywhere on the page.
    b.navigate(&url).expect("console opens");
    b.type_into("#token", "not-the-admin-token").unwrap();
    b.click("#signin-button").unwrap();
    let err = b
        .wait_until(
            "the sign-in error",
            "(() => { const e = document.getElementById('signin-error'); \
             return !e.hidden && e.textContent; })()",
            LONG,
        )
        .unwrap();
    assert!(
        err.as_str()
            .is_some_and(|e| e.contains("Wrong admin token")),
        "{err}"
    );
    let shown = b
        .eval(
            "[document.getElementById('console').hidden, \
              document.querySelectorAll('#members tbody tr, #trees tr, #events tbody tr').length, \
              sessionStorage.length]",
        )
        .unwrap();
    assert_eq!(
        shown,
        serde_json::json!([true, 0, 0]),
        "data shown after a wrong token"
    );

    // The right token: every node's tree and the members table render.
    b.type_into("#token", TOKEN).unwrap();
    b.click("#signin-button").unwrap();
    b.wait_until(
        "three trees and three member rows",
        "document.querySelectorAll('#members tbody tr td.lag').length === 3 && \
         ['n1', 'n2', 'n3'].every(n => document.querySelector( \
           `tr[data-node=\"${n}\"][data-path=\"stores/vector\"][data-state=\"running\"]`))",
        LONG,
    )
    .unwrap();
    let roles: Value = b
        .eval(
            "[...document.querySelectorAll('#members tbody tr')].map(r => r.cells[1].textContent)",
        )
        .unwrap();
    let roles: Vec<&str> = roles
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "leader").count(),
        1,
        "{roles:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "follower").count(),
        2,
        "{roles:?}"
    );

    // Restart `stores/vector` on n2 from n1's console: confirmed in a dialog, forwarded by n1.
    let n2 = c.node(2);
    let before = restarts(n2, "vector");
    let button = r#"button[data-action="restart"][data-node="n2"][data-path="stores/vector"]"#;
    b.answer_dialogs(false);
    b.click(button).unwrap();
    wait_for("the dismissed dialog", LONG, || {
        (!b.dialogs.is_empty()).then_some(())
    });
    assert_eq!(b.dialogs, ["Restart stores/vector on n2?"]);
    assert_eq!(
        restarts(n2, "vector"),
        before,
        "restarted without confirmation"
    );
    b.answer_dialogs(true);
    b.click(button).unwrap();
    wait_for("n2's vector store restarted", LONG, || {
        (restarts(n2, "vector") > before).then_some(())
    });
    assert_eq!(b.dialogs.len(), 2);
    b.wait_until(
        "the restart in the event list",
        r#"document.querySelector('#events tr[data-node="n2"][data-path="stores/vector"][data-event="child_restarted"]')"#,
        LONG,
    )
    .unwrap();
    let count_shown = b
        .wait_until(
            "the new restart count in n2's tree",
            &format!(
                "(() => {{ const td = document.querySelector({}); \
                 return td && Number(td.textContent) > {before} && td.textContent; }})()",
                js(r#"tr[data-node="n2"][data-path="stores/vector"] td.restarts"#)
            ),
            LONG,
        )
        .unwrap();
    assert_eq!(count_shown, Value::String((before + 1).to_string()));
    let details = b
        .eval(
            r#"document.querySelector('#events tr[data-node="n2"][data-path="stores/vector"]').cells[4].textContent"#,
        )
        .unwrap();
    assert!(
        details.as_str().is_some_and(|d| d.contains("(operator)")),
        "{details}"
    );
    // Nothing else was touched: n1's vector store kept its count.
    assert_eq!(restarts(n1, "vector"), 0);
    b.eval("window.scrollTo(0, 0)").unwrap();
    screenshot(&mut b, "console.png");
    b.eval("document.getElementById('events').scrollIntoView({block: 'end'})")
        .unwrap();
    screenshot(&mut b, "console-events.png");

    // The strict policy let the page run: no script errors, no policy violations.
    let thrown = b.take_events("Runtime.exceptionThrown");
    assert!(thrown.is_empty(), "{thrown:?}");
    let violations: Vec<Value> = b
        .take_events("Log.entryAdded")
        .into_iter()
        .filter(|e| e["params"]["entry"]["source"] == "security")
        .collect();
    assert!(violations.is_empty(), "{violations:?}");
}

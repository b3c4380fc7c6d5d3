//! The wasm SDK (client/js) against a real cluster: `verisim dev` started as a user runs it, then
//! Node's test runner on the built package (client/js/test/*.test.mjs): register, get verified,
//! update with a version, delete, vector search, authentication error codes, failover, CORS, and
//! the signing vectors byte for byte against this crate's own computation; then the Node example.
//!
//! A second test runs the edge verifier (client/js/test/verifier.test.mjs) under Node, without a
//! cluster; a third type-checks the package's TypeScript definitions with `tsc` (client/js/test/
//! types.ts), skipped loudly without `tsc` unless `VERISIM_REQUIRE_TSC=1`.
//!
//! Needs `node` (>= 18) and the package built by `client/js/build.sh`. Without them the test
//! prints `!!! SKIPPED` and passes, unless `VERISIM_REQUIRE_JS=1` (set by .ci/run once it has
//! built the package), in which case it fails.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::dev::DevCluster;
use support::wait_for;
use verisim_client::auth::{
    CoveredHeaders, IdentityKey, OpenWindow, WindowSecret, body_sha256_hex, cluster_dh_secret,
    derive_window_key_client, sign_request,
};
use verisim_client::wire::{ClientId, RequestId, WindowId};

/// How long Node's test run may take (it makes a few dozen requests to a loopback cluster).
const NODE_DEADLINE: Duration = Duration::from_secs(120);

/// Stops a child process (SIGTERM, then waits) if the test fails midway.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("client/js")
}

/// `Some(reason)` when the SDK cannot be run here.
fn missing_prerequisite() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let major: u32 = v
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 18 {
                return Some(format!("node {v} is older than 18 (no global fetch)"));
            }
        }
        _ => return Some("`node` is not installed".into()),
    }
    let pkg = js_dir().join("pkg/index.mjs");
    if !pkg.exists() {
        return Some(format!(
            "{} is missing: build it with client/js/build.sh",
            pkg.display()
        ));
    }
    None
}

/// Skips loudly, or fails when the CI asked for the SDK to be tested.
fn skip_or_fail(reason: &str) {
    if std::env::var("VERISIM_REQUIRE_JS").as_deref() == Ok("1") {
        panic!("VERISIM_REQUIRE_JS=1 but the wasm SDK cannot run: {reason}");
    }
    eprintln!("!!! SKIPPED: the wasm SDK test (tests/js_sdk.rs): {reason}");
    eprintln!("!!! Build the package with client/js/build.sh (needs node >= 18).");
}

/// Name, method, path and query, covered headers, timestamp, request id, body.
type RequestVector<'a> = (
    &'a str,
    &'a str,
    &'a str,
    CoveredHeaders<'a>,
    u64,
    &'a str,
    &'a [u8],
);

/// The signing vectors as this crate computes them (the inputs of client/src/auth/vectors.rs), as
/// the JSON object client/js/test/vectors.test.mjs compares with the wasm SDK's.
fn rust_vectors() -> String {
    let identity = IdentityKey::from_seed(&std::array::from_fn(|i| i as u8));
    let cluster = cluster_dh_secret(b"verisim test cookie").unwrap();
    let secret = WindowSecret::from_seed(&std::array::from_fn(|i| 0x20 + i as u8));
    let client = ClientId::new("alice").unwrap();
    let window = WindowId::new("w-0001").unwrap();
    let key = derive_window_key_client(&secret, &cluster.public(), &window).unwrap();
    let open = OpenWindow {
        cluster: cluster.public(),
        client: client.clone(),
        window: window.clone(),
        window_public_key: secret.public(),
        ttl_ms: 3_600_000,
        timestamp_ms: 1_700_000_000_000,
    };
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.into(), serde_json::Value::String(v));
    };
    put("identity_public", identity.public().to_hex());
    put("cluster_public", cluster.public().to_hex());
    put("window_public", secret.public().to_hex());
    put("window_key", key.to_hex().to_string());
    put(
        "open_signature",
        hex::encode(open.sign(&identity).signature.0),
    );
    put("body_sha256", body_sha256_hex(br#"{"id":"a"}"#));
    let requests: [RequestVector<'_>; 4] = [
        (
            "request_post",
            "POST",
            "/v1/entities",
            CoveredHeaders {
                content_type: Some("application/json"),
                if_match: None,
            },
            1_700_000_000_123,
            "r-0001",
            br#"{"id":"a"}"#,
        ),
        (
            "request_put_if_match",
            "PUT",
            "/v1/entities/a",
            CoveredHeaders {
                content_type: Some("application/json"),
                if_match: Some("7"),
            },
            1_700_000_000_456,
            "r-0002",
            br#"{"v":2}"#,
        ),
        (
            "request_get_query",
            "GET",
            "/v1/entities/a?allow_drift=true",
            CoveredHeaders::NONE,
            1_700_000_000_789,
            "r-0003",
            b"",
        ),
        (
            "request_delete_if_match_empty",
            "DELETE",
            "/v1/entities/a",
            CoveredHeaders {
                content_type: None,
                if_match: Some(""),
            },
            1_700_000_001_000,
            "r-0004",
            b"",
        ),
    ];
    for (name, method, path, covered, ts, rid, body) in requests {
        let signed = sign_request(
            &key,
            &client,
            &window,
            method,
            path,
            &covered,
            ts,
            &RequestId::new(rid).unwrap(),
            body,
        )
        .unwrap();
        let (_, sig) = signed
            .to_pairs()
            .into_iter()
            .find(|(k, _)| *k == "x-verisim-signature")
            .unwrap();
        put(name, sig);
    }
    serde_json::Value::Object(out).to_string()
}

/// Runs `node args` with `envs`, killed at the deadline: (success, stdout + stderr).
fn node(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    run("node", args, envs)
}

/// Runs `program args` in the workspace root with `envs`, killed at the deadline: (success,
/// stdout + stderr).
fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = Guard(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_for(
        &format!("{program} {args:?} to finish"),
        NODE_DEADLINE,
        || child.0.try_wait().ok().flatten(),
    );
    let text = format!(
        "{}\n--- stderr ---\n{}",
        out.join().unwrap(),
        err.join().unwrap()
    );
    (status.success(), text)
}

/// The number after `# <what> ` in node:test's summary.
fn summary(output: &str, what: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("# {what} ")))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn the_wasm_sdk_works_against_a_dev_cluster_and_signs_like_the_rust_library() {
    if let Some(reason) = missing_prerequisite() {
        skip_or_fail(&reason);
        return;
    }
    let dev = DevCluster::start();
    let (work, http) = (&dev.work, dev.http_base);
    let token = std::fs::read_to_string(work.path().join("d/admin-token")).unwrap();
    let nodes = (1..=3)
        .map(|i| format!("http://127.0.0.1:{}", http + i))
        .collect::<Vec<_>>()
        .join(",");
    let vectors = rust_vectors();
    let envs = [
        ("VERISIM_NODES", nodes.as_str()),
        ("VERISIM_ADMIN_TOKEN", token.trim()),
        ("VERISIM_VECTORS_JSON", vectors.as_str()),
    ];

    // The README's Node example first, as a user runs it on a fresh cluster.
    let (ok, output) = node(
        &["client/js/examples/node.mjs", "unused"],
        &[
            ("VERISIM_NODES", nodes.as_str()),
            ("VERISIM_ADMIN_TOKEN", token.trim()),
        ],
    );
    assert!(ok, "examples/node.mjs failed:\n{output}");
    assert!(
        output.lines().any(|l| l == "OK")
            && output.contains("all four modalities verified")
            && output.contains("409 version_conflict"),
        "{output}"
    );

    let (ok, output) = node(
        &[
            "--test",
            "--test-reporter=tap",
            "client/js/test/vectors.test.mjs",
            "client/js/test/cluster.test.mjs",
        ],
        &envs,
    );
    assert!(ok, "node --test failed:\n{output}");
    // Every test ran (none skipped: the environment above enables them all) and passed.
    assert_eq!(summary(&output, "fail"), Some(0), "{output}");
    assert_eq!(summary(&output, "skipped"), Some(0), "{output}");
    let passed = summary(&output, "pass").unwrap_or(0);
    assert!(passed >= 9, "expected at least 9 passing tests:\n{output}");
    eprintln!("node --test: {passed} tests passed");

    browser_example(work.path(), &nodes);
}

/// The edge verifier: the proxy's request check (`verisim_client::verify`, the code every node
/// runs), built to wasm and run under Node on the signing vectors of the Rust tests
/// (client/js/test/vectors.json, kept current by client/src/auth/vectors.rs): every correctly
/// signed vector verifies with the Rust fingerprint, every tampered one fails with its error code.
/// Needs no cluster.
#[test]
fn the_edge_verifier_runs_under_node_on_the_rust_signing_vectors() {
    if let Some(reason) = missing_prerequisite() {
        skip_or_fail(&reason);
        return;
    }
    let (ok, output) = node(
        &[
            "--test",
            "--test-reporter=tap",
            "client/js/test/verifier.test.mjs",
        ],
        &[],
    );
    assert!(ok, "node --test failed:\n{output}");
    assert_eq!(summary(&output, "fail"), Some(0), "{output}");
    assert_eq!(summary(&output, "skipped"), Some(0), "{output}");
    let passed = summary(&output, "pass").unwrap_or(0);
    assert!(passed >= 5, "expected at least 5 passing tests:\n{output}");
    eprintln!("node --test (edge verifier): {passed} tests passed");
}

/// The package's TypeScript definitions (pkg/index.d.ts, pkg/index.d.mts and the generated
/// pkg/verisim_client.d.ts) type-check: client/js/test/types.ts uses every export as the README
/// and examples do, with explicit annotations, and its `@ts-expect-error` lines (wrong argument
/// types, missing fields, private constructors) must fail, so the definitions are strict rather
/// than `any`. Compiled with `tsc -p client/js/tsconfig.json` (`--strict --noEmit`, es2020,
/// `moduleResolution node`), never run. Without `tsc` (Debian: node-typescript) it prints
/// `!!! SKIPPED`, unless `VERISIM_REQUIRE_TSC=1` (set by .ci/run where tsc is installed).
#[test]
fn the_typescript_definitions_type_check_strictly_with_tsc() {
    if let Some(reason) = missing_prerequisite() {
        skip_or_fail(&reason);
        return;
    }
    let tsc = Command::new("tsc").arg("--version").output();
    let version = match tsc {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => {
            if std::env::var("VERISIM_REQUIRE_TSC").as_deref() == Ok("1") {
                panic!(
                    "VERISIM_REQUIRE_TSC=1 but `tsc` is not installed (apt-get install node-typescript)"
                );
            }
            eprintln!(
                "!!! SKIPPED: the TypeScript definitions check (tests/js_sdk.rs): `tsc` is not installed"
            );
            eprintln!(
                "!!! Install it (Debian: apt-get install node-typescript) to type-check client/js."
            );
            return;
        }
    };
    let dmts = js_dir().join("pkg/index.d.mts");
    assert!(
        dmts.exists(),
        "{} is missing: rebuild the package with client/js/build.sh",
        dmts.display()
    );
    let usage = std::fs::read_to_string(js_dir().join("test/types.ts")).unwrap();
    let expected_errors = usage.matches("// @ts-expect-error").count();
    assert!(
        expected_errors >= 15,
        "client/js/test/types.ts has only {expected_errors} @ts-expect-error lines"
    );
    let (ok, output) = run("tsc", &["-p", "client/js/tsconfig.json"], &[]);
    assert!(
        ok,
        "tsc ({version}) found errors in the TypeScript definitions:\n{output}"
    );
    eprintln!(
        "tsc ({version}): the definitions type-check, and all {expected_errors} @ts-expect-error lines fail as they must"
    );
}

/// The browser example (client/js/examples/browser) in headless Chromium, served from
/// `http://localhost:<port>` (an origin `verisim dev` allows), with the dev client's key: the page
/// sets `data-result="ok"` once it has registered, read back verified and searched. Optional:
/// skipped (loudly) where Chromium or python3 (the static file server) is missing.
fn browser_example(work: &Path, nodes: &str) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("!!! SKIPPED: the browser example in headless Chromium (no chromium installed)");
        return;
    };
    let port = support::reserve_port().local_addr().unwrap().port();
    let Ok(server) = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "-d",
        ])
        .arg(js_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("!!! SKIPPED: the browser example in headless Chromium (no python3 to serve it)");
        return;
    };
    let _server = Guard(server);
    wait_for("the static file server", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("d/identity.json")).unwrap()).unwrap();
    let url = format!(
        "http://localhost:{port}/examples/browser/?client={}&key={}&nodes={nodes}",
        identity["client"].as_str().unwrap(),
        identity["secret_key"].as_str().unwrap()
    );
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=30000",
            "--dump-dom",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let mut browser = Guard(child);
    let dom = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    wait_for("chromium to dump the page", NODE_DEADLINE, || {
        browser.0.try_wait().ok().flatten()
    });
    let dom = dom.join().unwrap();
    assert!(
        dom.contains(r#"data-result="ok""#) && dom.contains("all four modalities verified"),
        "the browser example did not finish:\n{dom}"
    );
    eprintln!("the browser example passed in headless Chromium");
}

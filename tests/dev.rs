//! `verisim dev` as a user runs it: start the local cluster, register and read back the printed
//! example with the printed commands, stop it with Ctrl-C (SIGINT), and nothing is left running.

mod support;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::dev::DevCluster;
use support::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_verisim");

fn run(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run verisim");
    assert!(
        out.status.success(),
        "verisim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON answer")
}

#[test]
fn dev_starts_a_cluster_the_printed_example_works_and_ctrl_c_stops_everything() {
    let dev = DevCluster::start();
    let (work, http, printed) = (&dev.work, dev.http_base, &dev.printed);
    // The printed commands, as a user would paste them.
    let commands: Vec<Vec<String>> = printed
        .iter()
        .filter_map(|l| l.trim().strip_prefix("verisim "))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(commands.len(), 2, "{printed:#?}");
    let put = run(
        work.path(),
        &commands[0].iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(put["version"], 1, "{put}");
    let got = run(
        work.path(),
        &commands[1].iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(got["id"], "example-1");
    for m in ["graph", "vector", "tensor", "semantic"] {
        assert_eq!(got[m]["verified"], true, "{m}: {got}");
        assert_eq!(got[m]["hash"], put["hashes"][m], "{m}");
    }

    // The admin token: printed, in a 0600 file of 256 random bits, required by every node.
    let token_file = work.path().join("d/admin-token");
    assert!(
        printed.iter().any(|l| l.contains("d/admin-token")),
        "{printed:#?}"
    );
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 64, "{token:?}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token:?}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for i in 1..=3 {
        let url = format!("http://127.0.0.1:{}/admin/status", http + i);
        let none = agent.get(&url).call().unwrap();
        assert_eq!(none.status().as_u16(), 401, "n{i} without the token");
        let with = agent
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(with.status().as_u16(), 200, "n{i} with the token");
    }
    // The operator CLI reads it from the file: enrolling dev's key again is harmless.
    let node = format!("127.0.0.1:{}", http + 1);
    let again = run(
        work.path(),
        &[
            "key",
            "register",
            "--key",
            "d/identity.json",
            "--node",
            &node,
            "--admin-token-file",
            "d/admin-token",
        ],
    );
    assert_eq!(again["client"], "dev", "{again}");

    // Ctrl-C: every node stops and `verisim dev` exits cleanly.
    let mut dev = dev;
    dev.signal(Signal::SIGINT);
    let status = wait_for("verisim dev to exit", Duration::from_secs(30), || {
        dev.process.wait_exit(Duration::ZERO)
    });
    assert!(status.success(), "{status}");
    for i in 1..=3 {
        assert!(
            TcpStream::connect(("127.0.0.1", http + i)).is_err(),
            "node {i} still serves HTTP after Ctrl-C"
        );
    }
}

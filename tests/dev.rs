//! `verisim dev` as a user runs it: start the local cluster, register and read back the printed
//! example with the printed commands, stop it with Ctrl-C (SIGINT), and nothing is left running.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::wait_for;

const BIN: &str = env!("CARGO_BIN_EXE_verisim");

/// Kills `verisim dev` (and so, through its drop guard, its nodes) if the test fails midway.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
            let _ = self.0.wait();
        }
    }
}

/// Three consecutive free ports starting at base + 1, below the ephemeral range.
fn port_base() -> u16 {
    loop {
        let base = support::reserve_port().local_addr().unwrap().port();
        if base < 65_000
            && (1..=3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

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
    let work = tempfile::tempdir().unwrap();
    let (cluster, http) = (port_base(), port_base());
    let mut child = Command::new(BIN)
        .args([
            "dev",
            "--dir",
            "d",
            "--cluster-port-base",
            &cluster.to_string(),
            "--http-port-base",
            &http.to_string(),
        ])
        .current_dir(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start verisim dev");
    let stdout = child.stdout.take().unwrap();
    let dev = Dev(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    wait_for(
        "verisim dev to print DEV READY",
        Duration::from_secs(90),
        || {
            while let Ok(line) = rx.try_recv() {
                printed.push(line);
            }
            printed
                .iter()
                .any(|l| l.starts_with("DEV READY"))
                .then_some(())
        },
    );
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
    kill(Pid::from_raw(dev.0.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_for("verisim dev to exit", Duration::from_secs(30), || {
        dev.0.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status}");
    for i in 1..=3 {
        assert!(
            TcpStream::connect(("127.0.0.1", http + i)).is_err(),
            "node {i} still serves HTTP after Ctrl-C"
        );
    }
}

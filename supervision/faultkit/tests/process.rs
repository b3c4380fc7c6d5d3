//! Node processes: this test binary re-runs itself as a small "node" (the `child_node` test
//! below, which does nothing unless `FAULTKIT_CHILD_DIR` is set): it counts its starts in its
//! data directory, prints a READY line with its port, and answers HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use nix::sys::signal::kill;
use verisim_faultkit::{
    FaultError, NodeProcess, ProcessSpec, Sandbox, http_get, terminate_all, wait_http,
};

const WAIT: Duration = Duration::from_secs(20);
const CHILD_DIR: &str = "FAULTKIT_CHILD_DIR";

/// The child's body; a no-op in a normal test run.
#[test]
fn child_node() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let starts_file = std::path::Path::new(&dir).join("starts");
    let starts = std::fs::read_to_string(&starts_file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    std::fs::write(&starts_file, starts.to_string()).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // libtest has printed `test child_node ... ` on this line already: the parent looks for
    // the marker anywhere in a line.
    println!("READY port={}", l.local_addr().unwrap().port());
    for c in l.incoming() {
        let Ok(mut c) = c else { continue };
        let mut buf = [0u8; 1024];
        let _ = c.read(&mut buf);
        let body = format!("ok starts={starts}");
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn node(sandbox: &Sandbox) -> NodeProcess {
    let exe = std::env::current_exe().unwrap();
    let data = sandbox.join("n1");
    let spec = ProcessSpec::new("n1", exe)
        .args(["child_node", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, &data)
        .data_dir(&data)
        .log(sandbox.join("n1.log"));
    NodeProcess::new(spec)
}

fn ready(p: &mut NodeProcess) -> SocketAddr {
    let port: u16 = p
        .wait_line("READY", WAIT, |l| {
            l.split_once("READY port=")?.1.trim().parse().ok()
        })
        .unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_node_is_paused_killed_and_restarted_on_its_data_directory() {
    let sandbox = Sandbox::new("faultkit-process-").unwrap();
    let mut p = node(&sandbox);
    p.start().unwrap();
    let addr = ready(&mut p);
    let r = wait_http(addr, "/health", WAIT, |r| r.status == 200).unwrap();
    assert_eq!(r.body, "ok starts=1");

    // SIGSTOP: it keeps its socket (connections are accepted by the kernel) but answers nothing.
    p.sigstop().unwrap();
    assert!(p.is_paused());
    assert!(http_get(addr, "/health", Duration::from_millis(300)).is_err());
    p.sigcont().unwrap();
    wait_http(addr, "/health", WAIT, |r| r.status == 200).unwrap();

    // SIGKILL: gone; the port is closed.
    let pid = p.pid().unwrap();
    p.kill9();
    assert!(!p.is_running());
    assert!(kill(pid, None).is_err(), "the killed process was reaped");
    assert!(http_get(addr, "/health", Duration::from_millis(300)).is_err());

    // Restarted on the same data directory: it counts its second start.
    p.start().unwrap();
    let addr = ready(&mut p);
    let r = wait_http(addr, "/health", WAIT, |r| r.status == 200).unwrap();
    assert_eq!(r.body, "ok starts=2");
    p.restart().unwrap();
    let addr = ready(&mut p);
    assert_eq!(
        wait_http(addr, "/health", WAIT, |r| r.status == 200)
            .unwrap()
            .body,
        "ok starts=3"
    );
    assert!(p.terminate(WAIT).is_ok());
}

#[test]
fn a_dropped_process_is_killed_and_its_sandbox_removed() {
    let sandbox = Sandbox::new("faultkit-process-").unwrap();
    let dir = sandbox.path().to_path_buf();
    let mut p = node(&sandbox);
    p.start().unwrap();
    ready(&mut p);
    let pid = p.pid().unwrap();
    drop(p);
    assert!(
        kill(pid, None).is_err(),
        "the dropped process was killed and reaped"
    );
    drop(sandbox);
    assert!(!dir.exists());
}

#[test]
fn a_process_that_exits_before_its_line_fails_the_wait_at_once() {
    let mut p = NodeProcess::spawn(ProcessSpec::new("false", "sh").args(["-c", "exit 3"])).unwrap();
    let err = p.wait_line("READY", WAIT, |_| Some(())).unwrap_err();
    assert!(err.to_string().contains("exited"), "{err}");
}

#[test]
fn a_failed_start_is_explained_by_the_tail_of_its_log() {
    let sandbox = Sandbox::new("faultkit-process-").unwrap();
    let spec = ProcessSpec::new("crasher", "sh")
        .args(["-c", "echo 'config: no such file' >&2; exit 2"])
        .log(sandbox.join("crasher.log"));
    let mut p = NodeProcess::spawn(spec).unwrap();
    let err = p.wait_line("READY", WAIT, |_| None::<()>).unwrap_err();
    assert!(matches!(err, FaultError::ProcessExited { .. }), "{err}");
    assert!(
        p.log_tail(100).contains("config: no such file"),
        "{}",
        p.log_tail(100)
    );
    let no_log = NodeProcess::new(ProcessSpec::new("quiet", "true"));
    assert_eq!(no_log.log_tail(100), "<no log>");
}

#[test]
fn a_kept_sandbox_outlives_its_handle() {
    let mut sandbox = Sandbox::new("faultkit-keep-").unwrap();
    let dir = sandbox.path().to_path_buf();
    std::fs::write(sandbox.join("n1.log"), "kept").unwrap();
    sandbox.keep(true);
    drop(sandbox);
    let kept = std::fs::read_to_string(dir.join("n1.log"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(kept.unwrap(), "kept");

    // Changing one's mind: removed after all.
    let mut sandbox = Sandbox::new("faultkit-keep-").unwrap();
    let dir = sandbox.path().to_path_buf();
    sandbox.keep(true);
    sandbox.keep(false);
    drop(sandbox);
    assert!(!dir.exists());
}

#[test]
fn terminate_all_stops_a_cluster_with_one_deadline_and_kills_what_ignores_sigterm() {
    // `sleep` dies of SIGTERM; the second ignores it (an ignored signal stays ignored across
    // exec), so only SIGKILL stops it. Both print READY once their disposition is set.
    let polite = ProcessSpec::new("polite", "sh").args(["-c", "echo READY; exec sleep 600"]);
    let stubborn =
        ProcessSpec::new("stubborn", "sh").args(["-c", "trap '' TERM; echo READY; exec sleep 600"]);
    let mut procs = vec![
        NodeProcess::spawn(polite).unwrap(),
        NodeProcess::spawn(stubborn).unwrap(),
        NodeProcess::new(ProcessSpec::new("never started", "true")),
    ];
    for p in &mut procs[..2] {
        p.wait_line("READY", WAIT, |l| (l == "READY").then_some(()))
            .unwrap();
    }
    procs[0].sigstop().unwrap(); // a paused member is woken up to hear the SIGTERM
    let pids: Vec<_> = procs[..2].iter().map(|p| p.pid().unwrap()).collect();

    let outcomes = terminate_all(&mut procs, Duration::from_secs(1));
    assert_eq!(outcomes.len(), 3);
    let polite = outcomes[0].as_ref().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(polite),
        Some(15),
        "{polite}"
    );
    assert!(
        matches!(outcomes[1], Err(FaultError::Timeout { .. })),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(FaultError::ProcessNotRunning(_))),
        "{:?}",
        outcomes[2]
    );
    for (p, pid) in procs.iter().zip(pids) {
        assert!(!p.is_running());
        assert!(kill(pid, None).is_err(), "{} was reaped", p.spec().name);
    }
}

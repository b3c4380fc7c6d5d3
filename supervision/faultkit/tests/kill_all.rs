//! `kill_all`: a tool's Ctrl-C. Alone in its test binary, since it strikes every process the kit
//! started in this program (the other tests' processes too).

use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use verisim_faultkit::{FaultError, NodeProcess, ProcessSpec, kill_all};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn kill_all_strikes_every_live_process_and_a_blocked_wait_fails_at_once() {
    let ready = ProcessSpec::new("ready", "sh").args(["-c", "echo READY; exec sleep 600"]);
    let mut a = NodeProcess::spawn(ready.clone()).unwrap();
    a.wait_line("READY", WAIT, |l| (l == "READY").then_some(()))
        .unwrap();
    let mut reaped = NodeProcess::spawn(ready).unwrap();
    reaped.kill9(); // reaped already: not struck again
    // Never prints its line: another thread waits for it, as a benchmark's main thread waits for
    // a node while Ctrl-C arrives.
    let mut silent =
        NodeProcess::spawn(ProcessSpec::new("silent", "sh").args(["-c", "exec sleep 600"]))
            .unwrap();
    let silent_pid = silent.pid().unwrap();
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = silent.wait_line("READY", WAIT, |_| Some(()));
        (r, started.elapsed(), silent)
    });

    assert_eq!(kill_all(), 2);
    let (r, waited, mut silent) = waiter.join().unwrap();
    assert!(matches!(r, Err(FaultError::ProcessExited { .. })), "{r:?}");
    assert!(
        waited < WAIT,
        "the wait ended with the process, not its deadline"
    );
    assert!(!silent.is_running(), "the failed wait reaped it");
    assert!(kill(silent_pid, None).is_err());
    silent.kill9();

    let status = a.wait_exit(WAIT).expect("killed");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(kill_all(), 0, "nothing left to strike");
}

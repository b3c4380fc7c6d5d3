//! The deployment files in `deploy/`, checked as an operator uses them: the systemd unit passes
//! `systemd-analyze verify` and its sandboxing is rated by `systemd-analyze security`; the compose
//! file brings up a three-node cluster of real containers on their own network (nodes listening on
//! 0.0.0.0, announcing their service names, peers named by id), healthy by its own health checks,
//! seen whole from the host by `verisim status --cluster`, and back after a member restarts.
//! Each part skips with a loud message where its tool is missing.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::docker::image::{self, DOCKER_TIMEOUT, LABEL, docker, docker_or_skip, run_full};

const BIN: &str = env!("CARGO_BIN_EXE_verisim");
const COOKIE: &str = "9f1c2e7a4b6d8f0a1c3e5b7d9f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a";
const TOKEN: &str = "deploy-test-admin-token-5e8a1c3f7b9d2e4a6c8f0b1d3e5a7c9f";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip(test: &str, why: &str) {
    eprintln!("\n!!!!! SKIPPED: {why}; {test} did not run !!!!!\n");
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let test = "the_systemd_unit_verifies_and_is_sandboxed";
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip(test, "no systemd-analyze on this machine");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The unit as shipped, with ExecStart pointing at this build (verify wants the file to exist).
    let unit = std::fs::read_to_string(repo().join("deploy/verisim.service")).expect("the unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/verisim node "),
        "{unit}"
    );
    let unit = unit.replace("/usr/local/bin/verisim", BIN);
    let path = dir.path().join("verisim.service");
    std::fs::write(&path, unit).expect("write the unit");

    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // verify exits 0 on unknown keys too, and only says so: any line naming the unit is a fault.
    let faults: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("verisim.service"))
        .collect();
    assert!(
        out.status.success() && faults.is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let level: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for verisim.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    // systemd rates 0-10; below 2 is its "OK" band (a default service is 9.6, "UNSAFE").
    assert!(level < 2.0, "exposure {level}:\n{said}");
}

/// `docker-compose` for one project of the shipped compose file; `down -v` on drop.
struct Compose {
    project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    fn run(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut cmd = Command::new("docker-compose");
        cmd.args(["--project-name", &self.project, "--file"])
            .arg(repo().join("deploy/compose.yaml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        run_full(&mut cmd, timeout).map(|(out, _)| out)
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    fn health(&self, service: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            &self.container(service),
        ])
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| e)
    }

    fn wait_healthy(&self, services: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let states: Vec<String> = services.iter().map(|s| self.health(s)).collect();
            if states.iter().all(|s| s == "healthy") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not healthy within 120 s: {services:?} are {states:?}; logs:\n{}",
                self.logs()
            );
            // Polling a condition with a deadline; each inspect is a process start.
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn logs(&self) -> String {
        self.run(&["logs", "--no-color", "--tail", "40"], DOCKER_TIMEOUT)
            .unwrap_or_else(|e| e)
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if let Err(e) = self.run(
            &["down", "--volumes", "--remove-orphans", "--timeout", "5"],
            Duration::from_secs(120),
        ) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// The test image (this build's binary and its libraries) made as deploy/Dockerfile makes the
/// shipped one: an unprivileged user owning `/data`. (The Dockerfile's own build stage needs a
/// registry serving `rust` images, which this machine kind has not.)
fn deploy_image() -> Result<String, String> {
    let base = image::image()?;
    let tag = format!("{base}-deploy");
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).is_ok() {
        return Ok(tag);
    }
    let ctx = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir(ctx.path().join("data")).map_err(|e| e.to_string())?;
    let dockerfile = format!(
        "FROM {base}\nLABEL {LABEL}=1\nCOPY --chown=65532:65532 data/ /data/\nUSER 65532:65532\n"
    );
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("docker");
    cmd.args(["build", "--quiet", "--tag", &tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0");
    run_full(&mut cmd, Duration::from_secs(300))?;
    Ok(tag)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `verisim status --cluster --json` from the host, through node 1's published port.
fn cluster_status(node: &str) -> Option<Vec<Value>> {
    let out = Command::new(BIN)
        .args(["status", "--cluster", "--json", "--node", node])
        .env("VERISIM_ADMIN_TOKEN", TOKEN)
        .env_remove("VERISIM_ADMIN_TOKEN_FILE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Every member answers, all name one leader, and it is one of them.
fn one_leader(status: &[Value]) -> Option<u64> {
    if status.len() != 3 {
        return None;
    }
    let leaders: Vec<u64> = status
        .iter()
        .map(|s| s["answer"]["consensus"]["leader"].as_u64())
        .collect::<Option<_>>()?;
    (leaders.iter().all(|l| *l == leaders[0]) && (1..=3).contains(&leaders[0]))
        .then_some(leaders[0])
}

fn wait_one_leader(node: &str, compose: &Compose) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(leader) = cluster_status(node).as_deref().and_then(one_leader) {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader seen from the host within 60 s: {:?}; logs:\n{}",
            cluster_status(node),
            compose.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_compose_file_brings_up_a_healthy_three_node_cluster_that_survives_a_restart() {
    let test = "the_compose_file_brings_up_a_healthy_three_node_cluster_that_survives_a_restart";
    if !docker_or_skip(test) {
        return;
    }
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        return skip(test, "no docker-compose on this machine");
    }
    let tag = deploy_image().expect("the deploy image");
    let ports = [free_port(), free_port(), free_port()];
    let compose = Compose {
        project: format!("verisimdeploy{}", std::process::id()),
        env: vec![
            ("VERISIM_IMAGE".into(), tag),
            ("VERISIM_COOKIE".into(), COOKIE.into()),
            ("VERISIM_ADMIN_TOKEN".into(), TOKEN.into()),
            ("VERISIM_N1_HTTP_PORT".into(), ports[0].to_string()),
            ("VERISIM_N2_HTTP_PORT".into(), ports[1].to_string()),
            ("VERISIM_N3_HTTP_PORT".into(), ports[2].to_string()),
        ],
    };
    compose
        .run(&["up", "--detach", "--no-build"], Duration::from_secs(180))
        .expect("docker-compose up");
    compose.wait_healthy(&["n1", "n2", "n3"]);

    let n1 = format!("http://127.0.0.1:{}", ports[0]);
    // `--cluster` from the host finds every member at the address it advertises (the published
    // port), so the fan-out works from outside the container network.
    let leader = wait_one_leader(&n1, &compose);
    let status = cluster_status(&n1).expect("status");
    let nodes: Vec<&str> = status.iter().filter_map(|s| s["node"].as_str()).collect();
    for p in ports {
        assert!(
            nodes.contains(&format!("http://127.0.0.1:{p}").as_str()),
            "{nodes:?}"
        );
    }

    // A member restarted keeps its data volume and rejoins; the cluster agrees again.
    let restarted = if leader == 3 { "n2" } else { "n3" };
    compose
        .run(
            &["restart", "--timeout", "10", restarted],
            Duration::from_secs(120),
        )
        .expect("docker-compose restart");
    compose.wait_healthy(&["n1", "n2", "n3"]);
    wait_one_leader(&n1, &compose);

    // Named peers and advertised service names: no node keeps redialling another.
    let logs = compose.logs();
    assert!(!logs.contains("keep being refused"), "{logs}");
}

//! `verisim dev`: a local 3-node cluster on loopback in one command, with a dev client key
//! registered, a trust window open and an example entity to register.
//!
//! Everything lives in one directory (default `./verisim-dev`): the cookie, the admin token, the
//! cluster's authority and the nodes' identities, the node config and schema, each node's data and
//! log, the key and session files. Running it again reuses the data. The admin token (`admin-token`,
//! mode 0600, 256 random bits in hex) guards the nodes' `/admin/*` routes; `verisim dev` itself
//! enrolls its `dev` client with it. Each node seals its cluster messages with its identity
//! (`n<id>.identity`, issued by `authority.key`), as a production cluster should.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use verisim_client::auth::IdentityKey;
use verisim_client::http::Client;
use verisim_client::wire::{ClientId, RegisterRequest};
use verisim_faultkit::{FaultError, NodeProcess, ProcessSpec, terminate_all};

use super::{KeyFile, SessionFile, read_key_file, read_token_file, write_private_file};

const NODES: u64 = 3;
/// The admin token's file name in the dev directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// How long a node may take to print its READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes, stopped together, may take to exit after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The schema the dev nodes load: one example type.
pub const DEV_SCHEMA: &str = r#"[{"iri": "ex:Thing", "label": "Thing", "supertypes": [], "required": ["ex:name"],
  "properties": {
    "ex:name": {"datatype": "Text", "pattern": null, "min": null, "max": null},
    "ex:count": {"datatype": "Int", "pattern": null, "min": 0, "max": null},
    "ex:score": {"datatype": "Float", "pattern": null, "min": null, "max": null}}}]
"#;

/// `verisim dev` options.
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Directory for the cluster's data, logs, keys and example files.
    #[arg(long, default_value = "verisim-dev")]
    pub dir: PathBuf,
    /// Node i listens for cluster traffic on this port + i.
    #[arg(long, default_value_t = 7100)]
    pub cluster_port_base: u16,
    /// Node i serves HTTP (API and admin) on this port + i.
    #[arg(long, default_value_t = 8100)]
    pub http_port_base: u16,
}

/// The node processes (the process kit `verisim-faultkit`, which `tests/` and `verisim-bench`
/// start their nodes with too); dropping it stops them all at once: SIGTERM, then SIGKILL for
/// those still running after a grace period.
struct Nodes(Vec<(u64, NodeProcess)>);

impl Drop for Nodes {
    fn drop(&mut self) {
        let outcomes = terminate_all(self.0.iter_mut().map(|(_, p)| p), STOP_TIMEOUT);
        for ((id, _), outcome) in self.0.iter().zip(outcomes) {
            match outcome {
                Ok(status) => eprintln!("verisim dev: n{id} stopped ({status})"),
                Err(FaultError::Timeout { .. }) => {
                    eprintln!("verisim dev: n{id} did not stop in time; killed it");
                }
                Err(e) => eprintln!("verisim dev: n{id}: {e}"),
            }
        }
    }
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |e| format!("{what} {path}: {e}")
}

/// Writes `bytes` unless the file exists.
fn write_once(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(io("writing", path))
}

fn port(base: u16, i: u64) -> Result<u16, String> {
    u16::try_from(u64::from(base) + i).map_err(|_| format!("port {base} + {i} is out of range"))
}

/// Starts node `id` and waits for its READY line.
fn start_node(
    dir: &Path,
    id: u64,
    args: &DevArgs,
    exe: &Path,
) -> Result<(NodeProcess, String), String> {
    let peers: Vec<String> = (1..=NODES)
        .filter(|&p| p != id)
        .map(|p| port(args.cluster_port_base, p).map(|port| format!("127.0.0.1:{port}")))
        .collect::<Result<_, _>>()?;
    let log = dir.join(format!("n{id}.log"));
    let spec = ProcessSpec::new(format!("n{id}"), exe)
        .arg("node")
        .args(["--id", &id.to_string()])
        .arg("--data-dir")
        .arg(dir.join(format!("n{id}")))
        .args([
            "--cluster-listen",
            &format!("127.0.0.1:{}", port(args.cluster_port_base, id)?),
            "--http-listen",
            &format!("127.0.0.1:{}", port(args.http_port_base, id)?),
            "--peer",
            &peers.join(","),
            "--voters",
            "1,2,3",
        ])
        .arg("--cookie-file")
        .arg(dir.join("cookie"))
        .arg("--identity-file")
        .arg(super::identity::identity_path(dir, id))
        // Pages served from this machine may use the wasm SDK (client/js).
        .arg("--cors-origin")
        .arg(crate::proxy::cors::DEV_ORIGINS.join(","))
        .arg("--admin-token-file")
        .arg(dir.join(ADMIN_TOKEN_FILE))
        // The token file, not whatever token the caller's environment holds.
        .env_remove("VERISIM_ADMIN_TOKEN")
        .arg("--config")
        .arg(dir.join("node.toml"))
        // Its stderr (the log) is appended to the file; its stdout is read for the READY line.
        .log(&log);
    let mut node = NodeProcess::spawn(spec).map_err(|e| format!("starting n{id}: {e}"))?;
    let ready = node.wait_line("its READY line", READY_TIMEOUT, |line| {
        line.strip_prefix("READY ")?
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("http="))
            .map(str::to_owned)
    });
    match ready {
        Ok(http) => Ok((node, format!("http://{http}"))),
        Err(e) => {
            node.kill9();
            Err(format!(
                "n{id} did not start within {READY_TIMEOUT:?} ({e}); see {}",
                log.display()
            ))
        }
    }
}

/// The example hexad (`verisim_client::wire::example_entity`), with its error as text.
pub fn example_entity(id: &str) -> Result<RegisterRequest, String> {
    verisim_client::wire::example_entity(id).map_err(|e| e.to_string())
}

/// Prepares the directory, starts the nodes, registers the dev key, opens a window, prints how to
/// use them, and waits for Ctrl-C or SIGTERM.
pub async fn run(args: DevArgs) -> Result<(), String> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let cookie = dir.join("cookie");
    if !cookie.exists() {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        write_private_file(&cookie, secret.as_bytes(), false)?;
    }
    let token_path = dir.join(ADMIN_TOKEN_FILE);
    if !token_path.exists() {
        let token = zeroize::Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
        write_private_file(&token_path, token.as_bytes(), false)?;
    }
    let admin_token = read_token_file(&token_path)?;
    // Node identities, once: a rerun keeps the nodes' identities with their data.
    let ids: Vec<u64> = (1..=NODES).collect();
    if !ids
        .iter()
        .all(|&id| super::identity::identity_path(dir, id).exists())
    {
        super::identity::issue_cluster(dir, &ids)?;
    }
    let schema = dir.join("schema.json");
    write_once(&schema, DEV_SCHEMA.as_bytes())?;
    let absolute = std::fs::canonicalize(&schema).map_err(io("resolving", &schema))?;
    write_once(
        &dir.join("node.toml"),
        format!(
            "[stores]\nschema_file = {:?}\n",
            absolute.display().to_string()
        )
        .as_bytes(),
    )?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the verisim binary: {e}"))?;

    let mut nodes = Nodes(Vec::new());
    let mut urls = Vec::new();
    for id in 1..=NODES {
        let (child, url) = start_node(dir, id, &args, &exe)?;
        nodes.0.push((id, child));
        urls.push(url);
    }

    // The dev client: its key is kept across runs, its window is opened anew each run.
    let key_path = dir.join("identity.json");
    if !key_path.exists() {
        let client = ClientId::new("dev").map_err(|e| e.to_string())?;
        let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
        let file = KeyFile::new(client, &IdentityKey::from_seed(&seed));
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
        write_private_file(&key_path, &bytes, false)?;
    }
    let (client_id, identity) = read_key_file(&key_path)?;
    let session_path = dir.join("session.json");
    let session = {
        let urls = urls.clone();
        tokio::task::spawn_blocking(move || {
            let client = Client::new(&urls)
                .map_err(|e| e.to_string())?
                .with_admin_token(admin_token);
            client
                .register_client(&client_id, &identity.public())
                .map_err(|e| format!("registering the dev key: {e}"))?;
            client
                .open_window(&identity, &client_id, Duration::from_secs(12 * 3600))
                .map_err(|e| format!("opening the dev window: {e}"))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let file = SessionFile::new(urls.clone(), &session);
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    write_private_file(&session_path, &bytes, true)?;
    let example = dir.join("example.json");
    let example_body =
        serde_json::to_vec_pretty(&example_entity("example-1")?).map_err(|e| e.to_string())?;
    std::fs::write(&example, example_body).map_err(io("writing", &example))?;

    let d = dir.display();
    println!("VeriSim dev cluster: 3 nodes on loopback, data in {d}/");
    for (i, url) in urls.iter().enumerate() {
        println!("  n{}  {url}   (log: {d}/n{}.log)", i + 1, i + 1);
    }
    println!(
        "dev client `dev`: key {d}/identity.json, window open until {} ms (session {d}/session.json)",
        session.expires_at_ms
    );
    println!();
    println!("Register the example entity and read it back:");
    println!("  verisim put --session {d}/session.json {d}/example.json");
    println!("  verisim get --session {d}/session.json example-1");
    println!("Admin token (mode 0600): {d}/{ADMIN_TOKEN_FILE}");
    println!(
        "Cluster status: verisim status --cluster --node {} --admin-token-file {d}/{ADMIN_TOKEN_FILE}",
        urls[0]
    );
    println!("DEV READY (Ctrl-C stops every node)");

    wait_for_stop().await;
    eprintln!("verisim dev: stopping the nodes");
    drop(nodes);
    Ok(())
}

async fn wait_for_stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

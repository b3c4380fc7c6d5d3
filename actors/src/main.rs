//! The `verisim` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use tracing_subscriber::EnvFilter;
use verisim::node::{self, NodeConfig};
use verisim_cluster::CookieSource;

#[derive(Parser)]
#[command(
    name = "verisim",
    version,
    about = "VeriSim: the VeriSimDB orchestrator as supervised actors"
)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line, with the spans they happened in:
    /// request id, client, entity, route; actor names). Logs go to stderr; `VERISIM_LOG` filters.
    #[arg(
        long,
        global = true,
        env = "VERISIM_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local 3-node cluster on loopback, with a dev client key and an open window.
    Dev(verisim::cli::dev::DevArgs),
    /// Run one cluster node (one process is one node).
    Node(Box<NodeArgs>),
    /// The cluster secret (cookie): `verisim cookie new` makes one with 256 random bits.
    #[command(subcommand)]
    Cookie(CookieCmd),
    /// Node identities: `verisim identity authority` makes the cluster's authority, `verisim
    /// identity issue` gives a node the identity it seals its cluster messages with.
    #[command(subcommand)]
    Identity(verisim::cli::identity::IdentityCmd),
    #[command(flatten)]
    Client(verisim::cli::ClientCmd),
    #[command(flatten)]
    Ops(verisim::cli::ops::OpsCmd),
    /// Back up the registry and every payload it names into one checksummed file (`verify FILE`:
    /// check one offline).
    Backup(verisim::cli::backup::BackupArgs),
    /// Build a new one-node cluster's data directory from a backup.
    Restore(verisim::cli::backup::RestoreArgs),
    /// Print the shell completion script for `verisim` (e.g. `verisim completions bash >
    /// /etc/bash_completion.d/verisim`, or `source <(verisim completions bash)`).
    Completions {
        /// The shell: bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script of the whole command line for `shell`.
fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "verisim", out);
}

#[derive(Subcommand)]
enum CookieCmd {
    /// Print a new random cluster cookie (64 hex characters), or write it to a file of mode 0600.
    New {
        /// Write the cookie to this file (mode 0600, atomically) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the file if it exists (every node must then be given the new cookie).
        #[arg(long)]
        force: bool,
    },
}

fn run_cookie(cmd: CookieCmd) -> Result<(), String> {
    match cmd {
        CookieCmd::New { out, force } => {
            let cookie = verisim_cluster::new_cookie();
            match out {
                Some(path) => {
                    verisim::cli::files::write_private_file(&path, cookie.as_bytes(), force)?;
                    eprintln!("wrote a new cluster cookie to {}", path.display());
                }
                None => println!("{cookie}"),
            }
            Ok(())
        }
    }
}

/// Flags override the configuration file; each can also come from its `VERISIM_*` variable.
#[derive(clap::Args)]
struct NodeArgs {
    /// TOML configuration file (see docs/operations.md).
    #[arg(long, env = "VERISIM_CONFIG")]
    config: Option<PathBuf>,
    /// Raft node id (positive, unique, never reused).
    #[arg(long, env = "VERISIM_ID")]
    id: Option<u64>,
    #[arg(long, env = "VERISIM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// ractor_cluster listen address.
    #[arg(long, env = "VERISIM_CLUSTER_LISTEN")]
    cluster_listen: Option<SocketAddr>,
    /// Admin HTTP listen address.
    #[arg(long, env = "VERISIM_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// The HTTP address (`host:port`) tools reach this node at, recorded in the registry for
    /// `--cluster` fan-out, when it is not the listen address (`[http] advertise`).
    #[arg(long, env = "VERISIM_HTTP_ADVERTISE")]
    http_advertise: Option<String>,
    /// The cluster address other nodes reach this one at, when it is not the listen address
    /// (`host:port`, or `host` with the listen port): NAT, containers, a forwarded port.
    #[arg(long, env = "VERISIM_CLUSTER_ADVERTISE")]
    cluster_advertise: Option<String>,
    /// Cluster address of another node (repeat for each): `host:port`, or `ID=host:port` when its
    /// id is known (never redialled while connected, whatever address it announces).
    #[arg(long = "peer", env = "VERISIM_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// Voters of a new cluster, e.g. `1,2,3`.
    #[arg(long, env = "VERISIM_VOTERS", value_delimiter = ',')]
    voters: Vec<u64>,
    /// Join an existing cluster through this member's cluster address.
    #[arg(long, env = "VERISIM_JOIN")]
    join: Option<String>,
    /// Read the cluster cookie from this file (mode 0600); otherwise `VERISIM_COOKIE`.
    #[arg(long, env = "VERISIM_COOKIE_FILE")]
    cookie_file: Option<PathBuf>,
    /// This node's identity file, issued by the cluster's authority (`verisim identity issue`):
    /// cluster messages are then sealed and checked (`identity_file`).
    #[arg(long, env = "VERISIM_IDENTITY_FILE")]
    identity_file: Option<PathBuf>,
    /// Snapshot after this many entries.
    #[arg(long, env = "VERISIM_SNAPSHOT_ENTRIES")]
    snapshot_entries: Option<u64>,
    /// Raft tick, milliseconds.
    #[arg(long, env = "VERISIM_TICK_MS")]
    tick_ms: Option<u64>,
    /// Log entries kept below a snapshot's index for slow followers.
    #[arg(long, env = "VERISIM_LOG_KEEP")]
    log_keep: Option<u64>,
    /// Serve `POST /admin/proposals` (raw registry proposals; operators and benchmarks only).
    #[arg(long, env = "VERISIM_ADMIN_RAW_PROPOSALS")]
    admin_raw_proposals: bool,
    /// Bearer token required on `/admin/*` (overrides `[admin]` in the config file).
    #[arg(long, env = "VERISIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding that token.
    #[arg(long, env = "VERISIM_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Serve `/admin/*` without a token on a non-loopback `--http-listen` (`[admin] insecure_open`).
    #[arg(long, env = "VERISIM_ADMIN_INSECURE_OPEN")]
    admin_insecure_open: bool,
    /// An origin whose browser pages may call the public API (CORS): `https://app.example.com`,
    /// or `http://localhost:*` for any port (repeat or comma-separate; replaces `[proxy]
    /// cors_origins`).
    #[arg(
        long = "cors-origin",
        env = "VERISIM_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,
    /// Disaster recovery, last resort: before starting, make this node the only voter of its
    /// cluster, keeping its data (docs/operations.md, "Recover"). Remove it after the start.
    #[arg(long)]
    force_new_cluster: bool,
}

impl NodeArgs {
    fn into_config(self) -> Result<NodeConfig, String> {
        let mut c = match &self.config {
            Some(path) => NodeConfig::from_file(path).map_err(|e| e.to_string())?,
            None => NodeConfig::default(),
        };
        if let Some(v) = self.id {
            c.id = v;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.cluster_listen {
            c.cluster_listen = v;
        }
        if self.cluster_advertise.is_some() {
            c.cluster_advertise = self.cluster_advertise;
        }
        if !self.cors_origins.is_empty() {
            c.proxy.cors_origins = self.cors_origins;
        }
        if let Some(v) = self.http_listen {
            c.http_listen = v;
        }
        if self.http_advertise.is_some() {
            c.http.advertise = self.http_advertise;
        }
        if !self.peers.is_empty() {
            c.peers = self.peers;
        }
        if !self.voters.is_empty() {
            c.voters = self.voters;
        }
        if self.join.is_some() {
            c.join = self.join;
        }
        if let Some(v) = self.cookie_file {
            c.cookie = CookieSource::File(v);
        }
        if self.identity_file.is_some() {
            c.identity_file = self.identity_file;
        }
        if let Some(v) = self.snapshot_entries {
            c.snapshot.max_entries = v;
        }
        if let Some(v) = self.tick_ms {
            c.raft.tick_ms = v;
        }
        if let Some(v) = self.log_keep {
            c.raft.log_keep_after_snapshot = v;
        }
        if self.admin_raw_proposals {
            c.admin.raw_proposals = true;
        }
        if self.admin_insecure_open {
            c.admin.insecure_open = true;
        }
        if self.admin_token.is_some() || self.admin_token_file.is_some() {
            c.admin.token = self.admin_token;
            c.admin.token_file = self.admin_token_file;
        }
        Ok(c)
    }
}

async fn run_node(args: NodeArgs) -> Result<(), String> {
    let force = args.force_new_cluster;
    let config = args.into_config()?;
    if force {
        verisim::consensus::force::force_new_cluster(&config.raft_dir(), config.id)
            .map_err(|e| e.to_string())?;
    }
    let node = node::start(config).await.map_err(|e| e.to_string())?;
    // Tests and supervisors read this line to learn the bound addresses.
    println!(
        "READY id={} cluster={} http={}",
        node.config.id,
        node.cluster.listen_addr(),
        node.http_addr
    );
    let tree = node.tree.clone();
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            }
        }
        _ = terminated() => {}
        _ = tree_gone(tree) => {
            node.shutdown().await;
            return Err("the supervision tree gave up (restart intensity exceeded)".into());
        }
    }
    node.shutdown().await;
    Ok(())
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn tree_gone(tree: verisim_supervision::SupervisorHandle) {
    while tree.is_alive() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("VERISIM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("verisim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Dev(args) => verisim::cli::dev::run(args).await,
            Cmd::Node(args) => run_node(*args).await,
            Cmd::Cookie(cmd) => run_cookie(cmd),
            Cmd::Identity(cmd) => verisim::cli::identity::run(cmd),
            // Blocking HTTP on the main thread's block_on: fine for a one-shot command.
            Cmd::Client(cmd) => verisim::cli::run(cmd),
            Cmd::Ops(cmd) => verisim::cli::ops::run(cmd),
            Cmd::Backup(args) => verisim::cli::backup::run_backup(args),
            Cmd::Restore(args) => verisim::cli::backup::run_restore(args),
            Cmd::Completions { shell } => {
                completions(shell, &mut std::io::stdout().lock());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verisim: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_cover_every_subcommand_in_every_shell() {
        let subcommands: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        assert!(subcommands.len() > 10, "{subcommands:?}");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let script = String::from_utf8(out).expect("a completion script is text");
            for name in &subcommands {
                assert!(script.contains(name.as_str()), "{shell}: no {name}");
            }
        }
    }
}

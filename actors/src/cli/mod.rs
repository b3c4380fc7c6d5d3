//! Client commands of the `verisim` binary, on the `verisim-client` library: identity keys, trust
//! windows, and entity reads, writes and queries. JSON in (a file or stdin), JSON out.

pub mod backup;
mod client;
pub mod dev;
pub mod files;
pub mod identity;
pub mod ops;
#[cfg(test)]
mod tests;

pub use client::run;
pub use files::{
    KeyFile, SessionFile, read_key_file, read_session_file, read_token_file, write_private_file,
};

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Default identity key file, relative to the working directory.
pub const DEFAULT_KEY_FILE: &str = ".verisim/identity.json";
/// Default session (open window) file.
pub const DEFAULT_SESSION_FILE: &str = ".verisim/session.json";

/// The client subcommands (flattened into `verisim`'s).
#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Identity keys: create, show, register with the cluster.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Trust windows.
    #[command(subcommand)]
    Window(WindowCmd),
    /// Register an entity (or update it with --version) from a JSON file or stdin.
    Put(PutArgs),
    /// Fetch all four modalities of an entity.
    Get(GetArgs),
    /// Delete an entity.
    Delete(DeleteArgs),
    /// Query one modality with a JSON request from a file or stdin.
    Search(SearchArgs),
    /// Let another client read or write an entity you own, or withdraw its grant (`none`).
    Grant(GrantArgs),
}

/// Where the identity key lives.
#[derive(Args, Debug, Clone)]
pub struct KeyPath {
    /// Identity key file (JSON, mode 0600).
    #[arg(long = "key", env = "VERISIM_KEY", default_value = DEFAULT_KEY_FILE)]
    pub key_file: PathBuf,
}

/// Where the open window lives.
#[derive(Args, Debug, Clone)]
pub struct SessionPath {
    /// Session file written by `verisim window open` (JSON, mode 0600).
    #[arg(long = "session", env = "VERISIM_SESSION", default_value = DEFAULT_SESSION_FILE)]
    pub session_file: PathBuf,
}

/// `verisim key ...`.
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create a new Ed25519 identity key file.
    New {
        /// The client name the key will be registered under.
        #[arg(long)]
        client: String,
        #[command(flatten)]
        key: KeyPath,
        /// Overwrite an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Print the client name and public key of a key file.
    Show {
        #[command(flatten)]
        key: KeyPath,
    },
    /// Enroll the key file's public key with the cluster (`POST /admin/clients`, an admin call);
    /// with --rotate, replace the client's key and close its windows.
    Register {
        #[command(flatten)]
        key: KeyPath,
        /// A node's HTTP address (repeat for failover).
        #[arg(
            long = "node",
            env = "VERISIM_NODES",
            value_delimiter = ',',
            required = true
        )]
        nodes: Vec<String>,
        #[command(flatten)]
        admin: AdminAuth,
        /// Replace the key of an already enrolled client (`POST /admin/clients/{id}/rotate`):
        /// every window it has open is closed.
        #[arg(long)]
        rotate: bool,
    },
    /// Revoke a client (`DELETE /admin/clients/{id}`, an admin call): every window it has open is
    /// closed on every node, and the id can never be enrolled again.
    Revoke {
        /// The client to revoke.
        #[arg(long)]
        client: String,
        /// A node's HTTP address (repeat for failover).
        #[arg(
            long = "node",
            env = "VERISIM_NODES",
            value_delimiter = ',',
            required = true
        )]
        nodes: Vec<String>,
        #[command(flatten)]
        admin: AdminAuth,
    },
}

/// The admin token of admin calls: `--admin-token-file` (or `VERISIM_ADMIN_TOKEN_FILE`) if given,
/// else `VERISIM_ADMIN_TOKEN` (or `--admin-token`, which `ps` shows: prefer the others).
#[derive(Args, Debug, Clone, Default)]
pub struct AdminAuth {
    /// Admin bearer token, if the cluster requires one.
    #[arg(long, env = "VERISIM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// A file holding the admin token (e.g. `verisim dev`'s `<dir>/admin-token`); wins over
    /// --admin-token.
    #[arg(long, env = "VERISIM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl AdminAuth {
    /// The token to send, if any.
    ///
    /// # Errors
    /// The file cannot be read, others can read it, or the token is empty.
    pub fn token(&self) -> Result<Option<String>, String> {
        match (&self.admin_token_file, &self.admin_token) {
            (Some(path), _) => read_token_file(path).map(Some),
            (None, Some(t)) if t.trim().is_empty() => Err("the admin token is empty".into()),
            (None, Some(t)) => Ok(Some(t.trim().to_owned())),
            (None, None) => Ok(None),
        }
    }
}

/// `verisim window ...`.
#[derive(Subcommand, Debug)]
pub enum WindowCmd {
    /// Open a trust window and store it in the session file.
    Open {
        #[command(flatten)]
        key: KeyPath,
        #[command(flatten)]
        session: SessionPath,
        /// A node's HTTP address (repeat for failover).
        #[arg(
            long = "node",
            env = "VERISIM_NODES",
            value_delimiter = ',',
            required = true
        )]
        nodes: Vec<String>,
        /// Window lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

/// `verisim put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    /// JSON file with {id, graph, vector, tensor, semantic}; `-` or absent: stdin.
    pub file: Option<PathBuf>,
    /// Update the entity if its current version is this one (`PUT` with `If-Match`).
    #[arg(long)]
    pub version: Option<u64>,
    #[command(flatten)]
    pub session: SessionPath,
}

/// `verisim get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// Entity id.
    pub id: String,
    /// Return drifted modalities (marked unverified) instead of failing with drift_detected.
    #[arg(long)]
    pub allow_drift: bool,
    #[command(flatten)]
    pub session: SessionPath,
}

/// `verisim delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Entity id.
    pub id: String,
    /// Delete only if the current version is this one.
    #[arg(long)]
    pub version: Option<u64>,
    #[command(flatten)]
    pub session: SessionPath,
}

/// What `verisim grant` gives.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantAccess {
    /// Read the entity and find it through queries.
    Read,
    /// Read, update and delete it.
    Write,
    /// Withdraw the grant.
    None,
}

/// `verisim grant`.
#[derive(Args, Debug)]
pub struct GrantArgs {
    /// Entity id (you must own it).
    pub id: String,
    /// The client to grant.
    pub client: String,
    /// `read`, `write`, or `none` to withdraw the grant.
    #[arg(value_enum)]
    pub access: GrantAccess,
    #[command(flatten)]
    pub session: SessionPath,
}

/// Which query `verisim search` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchKind {
    /// k-NN: {collection, vector, k, exact?, ef?}.
    Vector,
    /// Graph neighbours: {id, direction?, predicate?}.
    Neighbours,
    /// Graph traversal: {start, max_hops, direction?, predicate?}.
    Traverse,
    /// Shortest path: {from, to, max_hops, direction?, predicate?}.
    Path,
    /// Tensor slice: {id, ranges: [[start, end], ...]}.
    Slice,
    /// Tensor reduction: {id, op, axis}.
    Reduce,
    /// Validate an annotation: {annotation: {types, properties}}.
    Validate,
    /// Entities of a type: {type, include_subtypes?}.
    ByType,
}

/// `verisim search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query kind.
    #[arg(value_enum)]
    pub kind: SearchKind,
    /// JSON request file; `-` or absent: stdin.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionPath,
}

//! Running the client subcommands.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use verisim_client::auth::IdentityKey;
use verisim_client::http::{Client, now_ms};
use verisim_client::wire::{Access, ClientId, EntityId, RegisterRequest};

use super::files::{KeyFile, SessionFile, read_key_file, read_session_file, write_private_file};
use super::{AdminAuth, ClientCmd, GrantAccess, KeyCmd, SearchKind, WindowCmd};

/// Runs one client command, printing its JSON result on stdout.
///
/// # Errors
/// A readable message (bad input, unreachable cluster, an API error with its code).
pub fn run(cmd: ClientCmd) -> Result<(), String> {
    let out = match cmd {
        ClientCmd::Key(k) => key(k)?,
        ClientCmd::Window(WindowCmd::Open {
            key,
            session,
            nodes,
            ttl_secs,
        }) => {
            let (client_id, identity) = read_key_file(&key.key_file)?;
            let client = new_client(&nodes)?;
            let s = client
                .open_window(&identity, &client_id, Duration::from_secs(ttl_secs))
                .map_err(|e| e.to_string())?;
            let file = SessionFile::new(client.node_urls(), &s);
            write_private_file(&session.session_file, &json_bytes(&file)?, true)?;
            serde_json::json!({
                "client": s.client,
                "window": s.window,
                "expires_at_ms": s.expires_at_ms,
                "session_file": session.session_file,
            })
        }
        ClientCmd::Put(a) => {
            let client = session_client(&a.session.session_file)?;
            let req: RegisterRequest = read_json(a.file.as_deref())?;
            match a.version {
                None => to_value(client.register(&req))?,
                Some(v) => {
                    let (id, update) = req.into_update();
                    to_value(client.update(&id, &update, v))?
                }
            }
        }
        ClientCmd::Get(a) => {
            let client = session_client(&a.session.session_file)?;
            to_value(client.get(&entity_id(&a.id)?, a.allow_drift))?
        }
        ClientCmd::Delete(a) => {
            let client = session_client(&a.session.session_file)?;
            to_value(client.delete(&entity_id(&a.id)?, a.version))?
        }
        ClientCmd::Grant(a) => {
            let client = session_client(&a.session.session_file)?;
            let id = entity_id(&a.id)?;
            let grantee = ClientId::new(a.client).map_err(|e| e.to_string())?;
            match a.access {
                GrantAccess::Read => to_value(client.grant(&id, &grantee, Access::Read))?,
                GrantAccess::Write => to_value(client.grant(&id, &grantee, Access::Write))?,
                GrantAccess::None => to_value(client.revoke_grant(&id, &grantee))?,
            }
        }
        ClientCmd::Search(a) => {
            let client = session_client(&a.session.session_file)?;
            let f = a.file.as_deref();
            match a.kind {
                SearchKind::Vector => to_value(client.search_vector(&read_json(f)?))?,
                SearchKind::Neighbours => to_value(client.graph_neighbours(&read_json(f)?))?,
                SearchKind::Traverse => to_value(client.graph_traverse(&read_json(f)?))?,
                SearchKind::Path => to_value(client.graph_path(&read_json(f)?))?,
                SearchKind::Slice => to_value(client.tensor_slice(&read_json(f)?))?,
                SearchKind::Reduce => to_value(client.tensor_reduce(&read_json(f)?))?,
                SearchKind::Validate => to_value(client.semantic_validate(&read_json(f)?))?,
                SearchKind::ByType => to_value(client.semantic_by_type(&read_json(f)?))?,
            }
        }
    };
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    // A closed pipe (`verisim get ... | head`) is the reader's choice, not an error.
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing the answer: {e}"))
        }
        _ => Ok(()),
    }
}

fn key(cmd: KeyCmd) -> Result<serde_json::Value, String> {
    match cmd {
        KeyCmd::New { client, key, force } => {
            let client = ClientId::new(client).map_err(|e| e.to_string())?;
            let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
            let identity = IdentityKey::from_seed(&seed);
            let file = KeyFile::new(client.clone(), &identity);
            write_private_file(&key.key_file, &json_bytes(&file)?, force)?;
            Ok(serde_json::json!({
                "client": client,
                "public_key": identity.public().to_hex(),
                "key_file": key.key_file,
            }))
        }
        KeyCmd::Show { key } => {
            let (client, identity) = read_key_file(&key.key_file)?;
            Ok(serde_json::json!({
                "client": client,
                "public_key": identity.public().to_hex(),
            }))
        }
        KeyCmd::Register {
            key,
            nodes,
            admin,
            rotate,
        } => {
            let (client_id, identity) = read_key_file(&key.key_file)?;
            let client = admin_client(&nodes, &admin)?;
            if rotate {
                to_value(client.rotate_client(&client_id, &identity.public()))
            } else {
                to_value(client.register_client(&client_id, &identity.public()))
            }
        }
        KeyCmd::Revoke {
            client,
            nodes,
            admin,
        } => {
            let client_id = ClientId::new(client).map_err(|e| e.to_string())?;
            to_value(admin_client(&nodes, &admin)?.revoke_client(&client_id))
        }
    }
}

/// The environment variable naming a PEM file of the certificate authorities `https://` nodes are
/// checked against (nodes serving `[http] tls`).
pub const CA_FILE_ENV: &str = "VERISIM_CA_FILE";

/// A client for `nodes`, trusting the authorities in `$VERISIM_CA_FILE` for `https://` nodes.
fn new_client<S: AsRef<str>>(nodes: &[S]) -> Result<Client, String> {
    let client = Client::new(nodes).map_err(|e| e.to_string())?;
    match std::env::var_os(CA_FILE_ENV) {
        None => Ok(client),
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|e| {
                format!(
                    "{CA_FILE_ENV}: cannot read {}: {e}",
                    Path::new(&path).display()
                )
            })?;
            client
                .with_ca_pem(&pem)
                .map_err(|e| format!("{CA_FILE_ENV}: {e}"))
        }
    }
}

/// A client for admin calls: the nodes, and the admin token if one is given.
pub(super) fn admin_client(nodes: &[String], admin: &AdminAuth) -> Result<Client, String> {
    let client = new_client(nodes)?;
    Ok(match admin.token()? {
        Some(t) => client.with_admin_token(t),
        None => client,
    })
}

/// A client for the nodes and window of a session file; refuses an expired window up front.
fn session_client(path: &Path) -> Result<Client, String> {
    let (nodes, session) = read_session_file(path)?;
    if session.expires_at_ms <= now_ms() {
        return Err(format!(
            "the window in {} has expired; run `verisim window open`",
            path.display()
        ));
    }
    Ok(new_client(&nodes)?.with_session(session))
}

fn entity_id(id: &str) -> Result<EntityId, String> {
    EntityId::new(id).map_err(|e| e.to_string())
}

fn json_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(v).map_err(|e| e.to_string())
}

fn to_value<T: Serialize>(
    r: Result<T, verisim_client::http::ClientError>,
) -> Result<serde_json::Value, String> {
    let v = r.map_err(|e| e.to_string())?;
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// Reads and parses a JSON request from a file, or stdin for `-` or no file.
pub(super) fn read_json<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, String> {
    let (text, from) = match file {
        Some(p) if p.as_os_str() != "-" => (
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            (s, "stdin".to_string())
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("{from}: {e}"))
}

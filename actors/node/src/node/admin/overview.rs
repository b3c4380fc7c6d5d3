//! `GET /admin/overview`: what the web console shows, for every member in one answer. This node
//! lists the members ([`super::members_list`]) and asks each one, itself included, over HTTP for
//! its `/admin/status`, `/admin/tree`, `/admin/drift` and recent `/admin/events`, concurrently
//! and with short deadlines, with this node's admin token; a member that does not answer is a
//! row with its error. The same fan-out `verisim status --cluster` makes from the operator's
//! machine, made here so that the browser talks to one origin only (no cross-origin admin
//! requests, a strict `connect-src 'self'`) and needs to reach only the node it opened.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use verisim_client::http::{Client, ClientError, RetryPolicy};
use verisim_client::wire::ErrorCode;

use super::{AdminState, ApiError};
use crate::consensus::endpoint::node_name;
use crate::registry::NodeName;

/// Per request to a member: an unanswering member must not stall the console's 2 s refresh
/// for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Recent events asked of each member.
const EVENTS_PER_NODE: usize = 64;
/// PEM certificate authorities members serving `[http] tls` are checked against (the variable
/// the CLI reads too).
const CA_FILE_ENV: &str = "VERISIM_CA_FILE";

pub(super) async fn overview(State(st): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let Json(members) = super::members_list(State(st.clone())).await?;
    let scheme = if st.tls { "https" } else { "http" };
    let token = st.token.as_deref().map(str::to_owned);
    let asks: Vec<_> = members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let (id, name) = (m["id"].clone(), m["name"].clone());
            let addr = m["http_addr"].as_str().map(str::to_owned);
            let token = token.clone();
            async move {
                let answer = match addr.clone() {
                    None => json!({"error": "has not recorded its HTTP address yet"}),
                    Some(addr) => {
                        let url = format!("{scheme}://{addr}");
                        tokio::task::spawn_blocking(move || ask_member(&url, token))
                            .await
                            .unwrap_or_else(|e| json!({"error": e.to_string()}))
                    }
                };
                let mut row = json!({"id": id, "name": name, "http_addr": addr});
                if let (Some(row), Some(answer)) = (row.as_object_mut(), answer.as_object()) {
                    row.extend(answer.clone());
                }
                row
            }
        })
        .collect();
    let nodes = futures::future::join_all(asks).await;
    Ok(Json(json!({
        "node": st.id,
        "leader": members["leader"],
        "members": members["members"],
        "nodes": nodes,
    })))
}

/// One member's status, tree, drift and recent events: each a value, or `{"error": ...}`.
fn ask_member(url: &str, token: Option<String>) -> Value {
    let client = match member_client(url, token) {
        Ok(c) => c,
        Err(e) => return json!({"error": e}),
    };
    let mut out = serde_json::Map::new();
    let events = format!("/admin/events?limit={EVENTS_PER_NODE}");
    for (key, path) in [
        ("status", "/admin/status"),
        ("tree", "/admin/tree"),
        ("drift", "/admin/drift"),
        ("events", events.as_str()),
    ] {
        let v = match client.admin("GET", path, None) {
            Ok(v) => v,
            // A member that cannot be reached at all is not asked three more times.
            Err(e) if key == "status" => return json!({"error": e.to_string()}),
            Err(e) => json!({"error": e.to_string()}),
        };
        out.insert(key.to_owned(), v);
    }
    Value::Object(out)
}

fn member_client(url: &str, token: Option<String>) -> Result<Client, String> {
    let mut client = Client::new(&[url])
        .map_err(|e| e.to_string())?
        .with_policy(RetryPolicy {
            max_attempts: 1,
            request_timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            ..RetryPolicy::default()
        });
    if url.starts_with("https://")
        && let Some(path) = std::env::var_os(CA_FILE_ENV)
    {
        let pem = std::fs::read(&path).map_err(|e| format!("{CA_FILE_ENV}: {e}"))?;
        client = client
            .with_ca_pem(&pem)
            .map_err(|e| format!("{CA_FILE_ENV}: {e}"))?;
    }
    Ok(match token {
        Some(t) => client.with_admin_token(t),
        None => client,
    })
}

/// How long a forwarded restart or terminate may take (the member's own bound is 120 s).
const ACTION_TIMEOUT: Duration = Duration::from_secs(130);

/// `POST /admin/nodes/{name}/restart/{path}`: [`super::supervision::restart`] on member `name`:
/// here when it is this node, forwarded over HTTP with this node's token otherwise. What the
/// console's restart buttons call, so that the browser talks to one origin only.
pub(super) async fn restart_on(
    State(st): State<AdminState>,
    Path((name, path)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if name == node_name(st.id) {
        return super::supervision::restart(State(st), Path(path)).await;
    }
    forward(&st, &name, "restart", &path).await
}

/// `POST /admin/nodes/{name}/terminate/{path}`: [`super::supervision::terminate`] on member
/// `name`, as [`restart_on`].
pub(super) async fn terminate_on(
    State(st): State<AdminState>,
    Path((name, path)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if name == node_name(st.id) {
        return super::supervision::terminate(State(st), Path(path)).await;
    }
    forward(&st, &name, "terminate", &path).await
}

async fn forward(
    st: &AdminState,
    name: &str,
    action: &'static str,
    path: &str,
) -> Result<Json<Value>, ApiError> {
    let addr = NodeName::new(name)
        .ok()
        .and_then(|n| {
            st.replica
                .read()
                .state
                .nodes()
                .get(&n)
                .map(|i| i.http_addr.clone())
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownNode,
                format!("{name} has no recorded HTTP address"),
            )
        })?;
    let url = format!("{}://{addr}", if st.tls { "https" } else { "http" });
    let token = st.token.as_deref().map(str::to_owned);
    let target = format!("/admin/{action}/{path}");
    let answer = tokio::task::spawn_blocking(move || {
        let client = member_client(&url, token)
            .map_err(Failure::Setup)?
            .with_policy(RetryPolicy {
                max_attempts: 1,
                request_timeout: ACTION_TIMEOUT,
                connect_timeout: CONNECT_TIMEOUT,
                ..RetryPolicy::default()
            });
        client.admin("POST", &target, None).map_err(Failure::Call)
    })
    .await
    .map_err(|e| Failure::Setup(e.to_string()))
    .and_then(|r| r);
    answer.map(Json).map_err(|e| e.into_api(name))
}

/// Why a forwarded action failed.
enum Failure {
    /// Before or around the call: the client, the blocking task.
    Setup(String),
    /// The call itself.
    Call(ClientError),
}

impl Failure {
    /// The member's own answer keeps its (known) code, and with it its status; the rest is a 502.
    fn into_api(self, name: &str) -> ApiError {
        match self {
            Self::Setup(e) => ApiError::new(ErrorCode::ForwardFailed, e),
            Self::Call(ClientError::Api { code, message, .. }) => {
                // A code keeps its one status, so the member's answer keeps its status too.
                let code = match code {
                    Some(
                        c @ (ErrorCode::UnknownPath
                        | ErrorCode::ChildRunning
                        | ErrorCode::NotRunning
                        | ErrorCode::RestartFailed
                        | ErrorCode::TerminateFailed),
                    ) => c,
                    // Not the caller's token that was refused: this node's, by the member.
                    _ => ErrorCode::MemberFailed,
                };
                ApiError::new(code, format!("{name}: {message}"))
            }
            Self::Call(e) => ApiError::new(ErrorCode::MemberUnreachable, format!("{name}: {e}")),
        }
    }
}

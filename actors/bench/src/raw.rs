//! Filling a cluster through `POST /admin/proposals` (nodes started with `--admin-raw-proposals`).

use verisim::registry::{Outcome, Proposal, encode};

use super::http::Http;

/// Proposes `batch` at `base_url` (a node's `http://host:port`); fails on any error or refusal.
pub fn propose_all(http: &Http, base_url: &str, batch: &[Proposal]) -> Result<(), String> {
    let r = http.post_bytes(
        &format!("{base_url}/admin/proposals"),
        "application/cbor",
        &encode(&batch),
    )?;
    if !r.ok() {
        return Err(format!("POST /admin/proposals: {} {}", r.status, r.body));
    }
    let results = r.body["results"]
        .as_array()
        .ok_or_else(|| format!("no results in {}", r.body))?;
    for res in results {
        if let Some(e) = res.get("error") {
            return Err(format!("a proposal failed: {e}"));
        }
        match serde_json::from_value::<Outcome>(res["outcome"].clone()) {
            Ok(Outcome::Refused(why)) => return Err(format!("a proposal was refused: {why}")),
            Ok(_) => {}
            Err(e) => return Err(format!("unreadable outcome {res}: {e}")),
        }
    }
    if results.len() != batch.len() {
        return Err(format!(
            "{} results for {} proposals",
            results.len(),
            batch.len()
        ));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (a proposal's `at_ms`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

//! A blocking HTTP/1.1 client with one keep-alive connection per [`Http`] (each load-generating
//! thread owns one), returning status and JSON body.

use std::time::Duration;

use serde_json::Value;

pub struct Http {
    agent: ureq::Agent,
}

/// Status code and body (JSON, or a JSON string when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // One connection per host is all a sequential client needs.
            .max_idle_connections_per_host(1)
            .build()
            .into();
        Self { agent }
    }

    pub fn get(&self, url: &str) -> Result<Reply, String> {
        reply(self.agent.get(url).call())
    }

    pub fn put_json(&self, url: &str, body: &Value) -> Result<Reply, String> {
        reply(self.agent.put(url).send_json(body))
    }

    pub fn post_json(&self, url: &str, body: &Value) -> Result<Reply, String> {
        reply(self.agent.post(url).send_json(body))
    }

    pub fn post_empty(&self, url: &str) -> Result<Reply, String> {
        reply(self.agent.post(url).send_empty())
    }

    pub fn post_bytes(&self, url: &str, content_type: &str, body: &[u8]) -> Result<Reply, String> {
        reply(
            self.agent
                .post(url)
                .header("content-type", content_type)
                .send(body),
        )
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, String> {
    let mut resp = r.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply { status, body })
}

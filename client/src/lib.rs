//! VeriSim's client library: the public HTTP API contract and the request-signing scheme.
//!
//! * [`wire`]: serde JSON types of every request and response, and the closed set of error codes.
//! * [`auth`]: identity keys (Ed25519), trust-window key agreement (X25519 + HKDF-SHA256) and request
//!   signing (HMAC-SHA256). Pure: no clock, no randomness, no I/O, so it builds for
//!   `wasm32-unknown-unknown` (`--no-default-features`).
//! * [`verify`]: the check of a signed request against a trust state (windows, clients, applied
//!   request ids), the decision sequence every node's proxy runs; pure, so it also runs at an edge.
//! * `http` (default feature): a blocking native client with retries, node failover and leader hints.
//! * `js` (feature, `wasm32-unknown-unknown` only): JavaScript bindings and an async client on
//!   `fetch`, packaged by `client/js/build.sh`.
//!
//! The byte-level specification is `docs/api.md`.

pub mod auth;
#[cfg(any(feature = "http", all(feature = "js", target_arch = "wasm32")))]
mod outgoing;
pub mod verify;
pub mod wire;

#[cfg(feature = "http")]
pub mod http;

#[cfg(all(feature = "js", target_arch = "wasm32"))]
pub mod js;

//! The proxy: the public HTTP API on every node (signed client requests, trust windows, registration
//! through the quorum, distribution to the store actors, multi-modality reads).

pub mod auth;
pub mod placement;

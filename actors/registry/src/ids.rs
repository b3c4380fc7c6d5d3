//! Validated names used in the registry: client ids, node names, request ids, window ids, and entity
//! ids. One definition each, in `verisim-vocab`, shared with the stores and the public API.
//!
//! Ids travel in URLs, logs and CBOR; validating them once at the edge keeps every later step simple.

pub use verisim_vocab::{ClientId, IdError, NodeName, RequestId, WindowId};

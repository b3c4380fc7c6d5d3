//! VeriSim's cluster layer on ractor_cluster: node bootstrap (cookie, optional mutual TLS), a
//! connector that dials peers and redials them with backoff, peers tracked by node name with
//! up/down events, dead-peer detection by heartbeat deadline, peer discovery through process
//! groups, and the CBOR wire codec. It runs as a subtree of the node's supervision tree
//! ([`cluster_subtree`]).
//!
//! It knows nothing of Raft: the consensus actor is one user among others. See `docs/cluster.md`.
//!
//! One OS process is one node: ractor's actor registry and process groups are process-global.

pub mod backoff;
pub mod codec;
pub mod config;
mod connector;
pub mod discovery;
mod error;
pub mod events;
pub mod heartbeat;
pub mod identity;
mod node;
pub mod seal;
pub mod secret;
pub mod supervised;
mod tls;

pub use codec::{Cbor, CodecError, DEFAULT_MAX_MESSAGE_BYTES};
pub use config::{ClusterConfig, ConfigError, CookieSource, SeedSpec, TlsConfig};
pub use connector::PeerStatus;
pub use discovery::Discovery;
pub use events::{DownReason, PeerEvent};
pub use identity::{Authority, IdentityError, Keyring, NodeCredential, NodeIdentity, SealError};
pub use node::{ClusterError, ClusterHandle};
pub use seal::{Opened, Sealed};
pub use secret::{ClusterKeys, new_cookie};
pub use supervised::cluster_subtree;
pub use tls::http_acceptor;

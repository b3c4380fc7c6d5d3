//! What a call to a store actor can fail with (the directory's calls, the import batches).

use std::time::Duration;

use verisim_cluster::{CodecError, SealError};
use verisim_stores::ModalityKind;

use super::messages::StoreRefusal;

/// Why a call to a store actor failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreCallError {
    /// No store of that modality is running on (or connected from) the node.
    #[error("no {kind:?} store reachable on node {node}")]
    Unreachable { node: String, kind: ModalityKind },
    /// The store did not answer in time (the request may still take effect).
    #[error("the {kind:?} store on {node} did not answer within {timeout:?}")]
    Timeout {
        node: String,
        kind: ModalityKind,
        timeout: Duration,
    },
    /// The store answered with a refusal (`refusal.client_error` tells 4xx from 5xx).
    #[error("the {kind:?} store on {node} refused: {refusal}")]
    Refused {
        node: String,
        kind: ModalityKind,
        refusal: StoreRefusal,
    },
    /// The request could not be encoded (e.g. over the 8 MiB message limit) or the reply did not
    /// decode.
    #[error("the {kind:?} store on {node}: {error}")]
    Codec {
        node: String,
        kind: ModalityKind,
        error: CodecError,
    },
    /// The answer's seal does not prove it comes from the node asked (with node identities).
    #[error("the {kind:?} store on {node} answered with a bad seal: {error}")]
    Seal {
        node: String,
        kind: ModalityKind,
        error: SealError,
    },
    /// The answer was not the kind the request asks for.
    #[error("the {kind:?} store on {node} answered {got} to a {asked} request")]
    UnexpectedAnswer {
        node: String,
        kind: ModalityKind,
        asked: &'static str,
        got: String,
    },
}

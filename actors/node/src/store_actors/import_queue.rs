//! The per-destination queues of the import batcher ([`super::batch`]): what a
//! [`super::StoreDirectory`] holds of it, apart from the batching itself, so that the directory
//! and the batcher do not import each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use verisim_stores::ExportedItem;

use super::call_error::StoreCallError;
use super::fence::Fence;

/// One entity's items waiting for their node's next batch.
pub(super) struct Pending {
    pub(super) items: Arc<[ExportedItem]>,
    pub(super) fence: Fence,
    pub(super) done: oneshot::Sender<Result<(), StoreCallError>>,
}

/// The per-destination queues of one [`super::StoreDirectory`] (shared by its clones).
#[derive(Default)]
pub struct ImportBatcher {
    pub(super) queues: Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>,
}

impl std::fmt::Debug for ImportBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportBatcher")
    }
}

//! The node's `stores` subtree: four permanent workers, `one_for_one` (a failed store restarts
//! alone; the others keep serving), at most 10 restarts in 60 s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fjall::Database;
use ractor::{Actor, ActorCell};
use verisim_stores::{
    GraphStore, SemanticStore, StoreConfig, StoreError, TensorStore, VectorStore,
};
use verisim_supervision::{ChildSpec, StartError, Strategy, SupervisorSpec};

use super::actor::{StoreActor, StoreActorArgs};
use super::actor_name;
use super::engine::Engine;
use super::group_sync::GroupSync;
use super::settings::{StoreSetup, StoresSettings};

/// Opens the node's stores database (one per directory: fjall locks it) — once per node, before
/// the tree starts, so restarted store actors reopen their engines from the same handle.
///
/// # Errors
/// fjall cannot open the directory (another process holds it, I/O).
pub fn open_stores_db(dir: &Path, settings: &StoresSettings) -> Result<Database, StoreError> {
    verisim_stores::db::open_db(
        dir,
        &StoreConfig {
            limits: settings.limits.clone(),
            cache_bytes: settings.cache_bytes,
        },
    )
}

fn child<E: Engine>(args: StoreActorArgs) -> ChildSpec {
    ChildSpec::new(E::KIND.name(), move |sup: ActorCell| {
        // One gate for every incarnation (see the actor's docs), so it is created here, once.
        let args = args.clone();
        async move {
            let (a, _) =
                Actor::spawn_linked(Some(actor_name(E::KIND)), StoreActor::<E>::new(), args, sup)
                    .await
                    .map_err(|e| StartError(e.to_string()))?;
            Ok(a.get_cell())
        }
    })
}

/// The `stores` subtree: graph, vector, tensor, semantic store actors on `db`, their writes group
/// committed through `sync` (one fsync of the shared journal for every write queued meanwhile),
/// checking requests and sealing answers with `keyring`.
pub fn stores_subtree(
    db: Database,
    setup: Arc<StoreSetup>,
    sync: Arc<GroupSync>,
    keyring: Arc<verisim_cluster::Keyring>,
) -> SupervisorSpec {
    let args = || {
        StoreActorArgs::new(db.clone(), setup.clone(), keyring.clone())
            .with_group_sync(sync.clone())
    };
    SupervisorSpec::new("stores", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(child::<GraphStore>(args()))
        .child(child::<VectorStore>(args()))
        .child(child::<TensorStore>(args()))
        .child(child::<SemanticStore>(args()))
}

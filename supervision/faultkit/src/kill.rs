//! Killing supervised actors, by supervision path or by ractor name, and waiting with a
//! deadline for the supervisor to put a new incarnation in their place.
//!
//! Paths are child ids from the root supervisor down, joined with `/`: `"stores/vector"` is the
//! child `vector` of the child supervisor `stores` of the root. Each wait re-resolves the path,
//! so it keeps working when a strategy restarts the supervisors along the way too.

use std::time::Duration;

use ractor::{ActorCell, ActorStatus};
use verisim_supervision::{ChildInfo, ChildState, SupervisorError, SupervisorHandle};

use crate::error::FaultError;
use crate::tree::Tree;
use crate::wait::wait_until_async;

/// How an actor is made to fail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// ractor's `kill`: the actor stops at once, its current handler is aborted. The supervisor
    /// sees an abnormal exit (`"killed"`).
    #[default]
    Kill,
    /// ractor's `stop` with this reason: the actor finishes the message it is handling, then
    /// stops. Any reason other than `normal`/`shutdown` is an abnormal exit (a transient child
    /// is restarted); those two are normal exits.
    Stop(String),
}

impl Fault {
    /// Inflicts the fault on `cell`.
    pub fn inflict(&self, cell: &ActorCell) {
        match self {
            Self::Kill => cell.kill(),
            Self::Stop(reason) => cell.stop(Some(reason.clone())),
        }
    }
}

/// What a kill did: the incarnation that was killed and the one that replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// The path (or ractor name) of the killed actor.
    pub target: String,
    /// The killed incarnation's ractor id.
    pub old: String,
    /// The new incarnation's ractor id.
    pub new: String,
    /// The child's restart count once replaced (for a kill by name: `None`).
    pub restart_count: Option<u64>,
}

/// The child at `path` below `root`, as its supervisor sees it now.
pub async fn resolve(root: &SupervisorHandle, path: &str) -> Result<ChildInfo, FaultError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err(FaultError::NoSuchPath(path.to_string()));
    };
    let mut sup = root.clone();
    for seg in parents {
        sup = sup
            .child_supervisor(seg)
            .await
            .map_err(|e| not_found(e, path))?;
    }
    sup.child(last).await.map_err(|e| not_found(e, path))
}

fn not_found(e: SupervisorError, path: &str) -> FaultError {
    match e {
        SupervisorError::NoSuchChild(_) => FaultError::NoSuchPath(path.to_string()),
        other => FaultError::Supervisor(other),
    }
}

/// The supervisor handle at `path` (the empty path is `root` itself).
pub async fn supervisor_at(
    root: &SupervisorHandle,
    path: &str,
) -> Result<SupervisorHandle, FaultError> {
    let mut sup = root.clone();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        sup = sup
            .child_supervisor(seg)
            .await
            .map_err(|e| not_found(e, path))?;
    }
    Ok(sup)
}

/// A snapshot of the whole tree below `root`.
pub async fn tree(root: &SupervisorHandle) -> Result<Tree, FaultError> {
    Ok(Tree::from(root.tree().await?))
}

/// Waits until the tree below `root` satisfies `pred`, and returns it.
pub async fn wait_tree(
    root: &SupervisorHandle,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Tree) -> bool,
) -> Result<Tree, FaultError> {
    let pred = &pred;
    wait_until_async(what, timeout, move || async move {
        tree(root).await.ok().filter(|t| pred(t))
    })
    .await
}

/// Inflicts `fault` on the running child at `path` and returns its ractor id, without waiting.
pub async fn inflict_at(
    root: &SupervisorHandle,
    path: &str,
    fault: &Fault,
) -> Result<String, FaultError> {
    let child = resolve(root, path).await?;
    let (Some(cell), ChildState::Running) = (child.cell, child.state) else {
        return Err(FaultError::NotRunning(path.to_string()));
    };
    // Killed already, its exit not yet handled by the supervisor (which still reports it
    // running): striking it again would not be one more failure.
    if cell.get_status() >= ActorStatus::Stopping {
        return Err(FaultError::NotRunning(path.to_string()));
    }
    fault.inflict(&cell);
    Ok(cell.get_id().to_string())
}

/// Waits until the child at `path` runs an incarnation other than `old`.
pub async fn wait_replaced(
    root: &SupervisorHandle,
    path: &str,
    old: &str,
    timeout: Duration,
) -> Result<Replaced, FaultError> {
    let what = format!("`{path}` (was {old}) to be replaced by a new incarnation");
    let child = wait_until_async(&what, timeout, move || async move {
        resolve(root, path)
            .await
            .ok()
            .filter(|c| c.state == ChildState::Running)
            .filter(|c| c.actor_id.as_deref().is_some_and(|id| id != old))
    })
    .await?;
    Ok(Replaced {
        target: path.to_string(),
        old: old.to_string(),
        new: child.actor_id.unwrap_or_default(),
        restart_count: Some(child.restart_count),
    })
}

/// Kills the child at `path` below `root` ([`Fault::Kill`]) and waits, up to `timeout`, until
/// its supervisor runs a new incarnation in its place.
///
/// ```
/// # use ractor::{Actor, ActorProcessingErr, ActorRef};
/// # #[derive(Clone)]
/// # struct Idle;
/// # enum Never {}
/// # impl ractor::Message for Never {}
/// # impl Actor for Idle {
/// #     type Msg = Never;
/// #     type State = ();
/// #     type Arguments = ();
/// #     async fn pre_start(&self, _: ActorRef<Never>, _: ()) -> Result<(), ActorProcessingErr> {
/// #         Ok(())
/// #     }
/// # }
/// use std::time::Duration;
/// use verisim_faultkit::{kill_and_wait, tree};
/// use verisim_supervision::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SupervisorSpec::new("pool", Strategy::OneForOne)
///     .child(ChildSpec::for_actor("w1", Idle, ()))
///     .child(ChildSpec::for_actor("w2", Idle, ()));
/// let app = SupervisorSpec::new("app", Strategy::OneForOne).child(ChildSpec::supervisor("pool", pool));
/// let (app, _join) = SupervisorHandle::start(app).await?;
///
/// let r = kill_and_wait(&app, "pool/w2", Duration::from_secs(5)).await?;
/// assert_ne!(r.old, r.new);
/// let t = tree(&app).await?;
/// t.expect_shape("app(pool(w1 w2))")?;
/// t.expect_restarts(&[("pool", 0), ("pool/w1", 0), ("pool/w2", 1)])?;
/// app.stop().await;
/// # Ok(())
/// # }
/// ```
pub async fn kill_and_wait(
    root: &SupervisorHandle,
    path: &str,
    timeout: Duration,
) -> Result<Replaced, FaultError> {
    fault_and_wait(root, path, &Fault::Kill, timeout).await
}

/// Like [`kill_and_wait`], with any [`Fault`].
pub async fn fault_and_wait(
    root: &SupervisorHandle,
    path: &str,
    fault: &Fault,
    timeout: Duration,
) -> Result<Replaced, FaultError> {
    let old = inflict_at(root, path, fault).await?;
    wait_replaced(root, path, &old, timeout).await
}

/// Kills the actor registered under ractor name `name` and waits, up to `timeout`, until an
/// actor with another id is registered under that name and running (the supervisor's new
/// incarnation registered it again).
pub async fn kill_named_and_wait(
    name: &str,
    fault: &Fault,
    timeout: Duration,
) -> Result<Replaced, FaultError> {
    let cell =
        ractor::registry::where_is(name).ok_or_else(|| FaultError::NoSuchName(name.into()))?;
    let old = cell.get_id();
    fault.inflict(&cell);
    let what = format!("`{name}` (was {old}) to be registered by a new incarnation");
    let new = wait_until_async(&what, timeout, move || async move {
        ractor::registry::where_is(name)
            .filter(|c| c.get_id() != old && c.get_status() == ActorStatus::Running)
            .map(|c| c.get_id())
    })
    .await?;
    Ok(Replaced {
        target: name.to_string(),
        old: old.to_string(),
        new: new.to_string(),
        restart_count: None,
    })
}

//! A cloneable handle to a running supervisor: introspection and operator actions.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorRef, ActorStatus, RpcReplyPort};

use crate::error::SupervisorError;
use crate::introspect::{
    ChildCounts, ChildInfo, SupervisorInfo, SupervisorInfoHeader, TreeChild, TreeNode,
};
use crate::spec::{ChildKind, ChildSpec, SupervisorSpec, TemplateArgs};
use crate::supervisor::{Supervisor, SupervisorMsg};

/// A handle to a [`Supervisor`]. Calls wait for the supervisor's answer; an operator action that
/// stops a child waits for that child's shutdown. Do not call a supervisor from inside one of its
/// own children's handlers and wait for the answer while the supervisor may be stopping that
/// child: that would wait on itself until the shutdown timeout.
///
/// OTP's operator calls, on a running supervisor:
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
/// use verisim_supervision::{ChildSpec, ChildState, Strategy, SupervisorHandle, SupervisorSpec};
/// # #[tokio::main]
/// # async fn main() -> Result<(), verisim_supervision::SupervisorError> {
/// let spec = SupervisorSpec::new("app", Strategy::OneForOne)
///     .child(ChildSpec::for_actor("cache", Idle, ()))
///     .child(ChildSpec::for_actor("web", Idle, ()));
/// let (app, _join) = SupervisorHandle::start(spec).await?;
///
/// let ids: Vec<String> = app.which_children().await?.into_iter().map(|c| c.id).collect();
/// assert_eq!(ids, ["cache", "web"]);
/// assert_eq!(app.count_children().await?.active, 2);
///
/// app.terminate_child("web").await?; // stopped, spec kept
/// assert_eq!(app.child("web").await?.state, ChildState::Stopped);
/// app.restart_child("web").await?; // running again
/// app.terminate_child("web").await?;
/// app.delete_child("web").await?; // spec removed
/// assert_eq!(app.count_children().await?.specs, 1);
/// assert_eq!(app.get_childspec("cache").await?.id, "cache");
/// app.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SupervisorHandle {
    actor: ActorRef<SupervisorMsg>,
    timeout: Option<Duration>,
}

impl SupervisorHandle {
    /// Spawn a top-level supervisor (no parent) and start its children in order. A child that
    /// fails to start fails this call with [`SupervisorError::ChildStartFailed`] naming it,
    /// after the children already started were stopped in reverse order. The specs are checked
    /// first ([`SupervisorSpec::check`]); an invalid one fails the call and starts nothing.
    /// The `JoinHandle` completes when the supervisor has stopped.
    pub async fn start(
        spec: SupervisorSpec,
    ) -> Result<(SupervisorHandle, JoinHandle<()>), SupervisorError> {
        let (actor, join) = Actor::spawn(None, Supervisor, spec)
            .await
            .map_err(SupervisorError::from_spawn)?;
        Ok((Self::from_ref(actor), join))
    }

    /// A handle to a supervisor actor, or `None` if the cell is not one of ours.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        (cell.is_message_type_of::<SupervisorMsg>() == Some(true))
            .then(|| Self::from_ref(cell.into()))
    }

    fn from_ref(actor: ActorRef<SupervisorMsg>) -> Self {
        Self {
            actor,
            timeout: None,
        }
    }

    /// Give up waiting for answers after `timeout` (default: wait as long as it takes).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The supervisor actor.
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// Whether the supervisor actor is still running.
    pub fn is_alive(&self) -> bool {
        self.actor.get_status() < ActorStatus::Stopping
    }

    async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, SupervisorError> {
        // Wait for the supervisor's exit as well as for its answer. A call that races with the
        // supervisor's exit can strand its request: ractor checks that the mailbox is open, the
        // mailbox closes and drops what it holds, and only then does the request land in it. A
        // request stranded this way is dropped only with the last reference to the actor, and this
        // handle is one of them: waiting only for the answer would wait forever. `biased`: an
        // answer sent before the exit wins over the exit.
        let cell = self.actor.get_cell();
        let answer = tokio::select! {
            biased;
            answer = self.actor.call(build, self.timeout) => answer,
            _ = cell.wait(None) => Ok(CallResult::SenderError),
        };
        match answer {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(SupervisorError::Unavailable("timed out".into())),
            Ok(CallResult::SenderError) => Err(SupervisorError::Unavailable(
                "stopped before answering".into(),
            )),
            Err(e) => Err(SupervisorError::Unavailable(e.to_string())),
        }
    }

    /// The supervisor's name, strategy, intensity and children.
    pub async fn info(&self) -> Result<SupervisorInfo, SupervisorError> {
        self.call(SupervisorMsg::Info).await
    }

    /// OTP's `which_children`: the children in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        Ok(self.info().await?.children)
    }

    /// OTP's `count_children`, counted by the supervisor without building the list.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        self.call(SupervisorMsg::CountChildren).await
    }

    /// One child, by id (found by the supervisor's index, without building the list).
    pub async fn child(&self, id: &str) -> Result<ChildInfo, SupervisorError> {
        let key = id.to_string();
        self.call(|reply| SupervisorMsg::Child(key, reply))
            .await?
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_string()))
    }

    /// The same supervisor, waiting for answers as long as `parent` does.
    fn with_timeout_of(self, parent: &SupervisorHandle) -> Self {
        Self {
            timeout: parent.timeout,
            ..self
        }
    }

    /// A handle to a child that is a running supervisor (with this handle's timeout).
    pub async fn child_supervisor(&self, id: &str) -> Result<SupervisorHandle, SupervisorError> {
        let child = self.child(id).await?;
        child
            .cell
            .and_then(Self::from_cell)
            .map(|h| h.with_timeout_of(self))
            .ok_or_else(|| {
                SupervisorError::Unavailable(format!("child `{id}` is not a running supervisor"))
            })
    }

    /// Add a child at run time and start it (after the existing children).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        self.call(|reply| SupervisorMsg::StartChild(spec, reply))
            .await?
    }

    /// Start one more child from the supervisor's template (set with
    /// [`SupervisorSpec::template`]); returns its id and cell.
    pub async fn start_from_template(&self) -> Result<(String, ActorCell), SupervisorError> {
        self.start_from_template_with(()).await
    }

    /// Start one more child from a template that takes arguments (set with
    /// [`SupervisorSpec::template_with`]), passing it `args`; returns the child's id and cell.
    /// Arguments of another type than the template's fail with
    /// [`SupervisorError::TemplateArgs`] and start nothing.
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
    /// use verisim_supervision::{
    ///     ChildSpec, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
    /// };
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), SupervisorError> {
    /// let spec = SupervisorSpec::new("sessions", Strategy::OneForOne)
    ///     .max_children(1)
    ///     .template_with(|n, user: String| {
    ///         ChildSpec::for_actor(format!("session-{n}-{user}"), Idle, ())
    ///             .restart(Restart::Temporary)
    ///     });
    /// let (sessions, _join) = SupervisorHandle::start(spec).await?;
    /// let (id, _cell) = sessions.start_from_template_with("ada".to_string()).await?;
    /// assert_eq!(id, "session-1-ada");
    /// assert_eq!(
    ///     sessions.start_from_template_with("bob".to_string()).await.unwrap_err(),
    ///     SupervisorError::MaxChildren(1)
    /// );
    /// sessions.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_from_template_with<A: Send + 'static>(
        &self,
        args: A,
    ) -> Result<(String, ActorCell), SupervisorError> {
        let args = TemplateArgs::new(args);
        self.call(|reply| SupervisorMsg::StartFromTemplate(args, reply))
            .await?
    }

    /// OTP's `get_childspec`: a copy of the child's spec, by id.
    pub async fn get_childspec(&self, id: &str) -> Result<ChildSpec, SupervisorError> {
        let id = id.to_string();
        self.call(|reply| SupervisorMsg::GetChildSpec(id, reply))
            .await?
    }

    /// Stop a child (shutdown policy applies) and keep its spec; a temporary child is removed.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_string();
        self.call(|reply| SupervisorMsg::TerminateChild(id, reply))
            .await?
    }

    /// Stop the child if it runs, then start it. On a child supervisor that gave up this
    /// restarts that whole subtree and nothing above it.
    pub async fn restart_child(&self, id: &str) -> Result<ActorCell, SupervisorError> {
        let id = id.to_string();
        self.call(|reply| SupervisorMsg::RestartChild(id, reply))
            .await?
    }

    /// Remove a stopped child's spec.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_string();
        self.call(|reply| SupervisorMsg::DeleteChild(id, reply))
            .await?
    }

    /// The whole tree below this supervisor, for the admin API and CLI. Each supervisor answers
    /// for itself, so the snapshot is not atomic across levels. This handle's timeout bounds
    /// each supervisor's answer, nested ones included: one that does not answer in time (say,
    /// busy waiting for a child's `Infinity` shutdown) fails the whole call with an error naming
    /// the path to it, rather than hanging the walk or silently leaving its subtree out.
    pub fn tree(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<TreeNode, SupervisorError>> + Send + '_>> {
        Box::pin(async move {
            let info = self.info().await?;
            let mut children = Vec::with_capacity(info.children.len());
            for child in info.children {
                let subtree = match (&child.kind, &child.cell) {
                    (ChildKind::Supervisor, Some(cell)) => match Self::from_cell(cell.clone()) {
                        Some(h) => match h.clone().with_timeout_of(self).tree().await {
                            Ok(t) => Some(Box::new(t)),
                            // A child that stopped meanwhile is shown without a subtree.
                            Err(_) if !h.is_alive() => None,
                            Err(SupervisorError::Unavailable(why)) => {
                                return Err(SupervisorError::Unavailable(format!(
                                    "child supervisor `{}`: {why}",
                                    child.id
                                )));
                            }
                            Err(e) => return Err(e),
                        },
                        None => None,
                    },
                    _ => None,
                };
                children.push(TreeChild {
                    info: child,
                    subtree,
                });
            }
            Ok(TreeNode {
                supervisor: SupervisorInfoHeader {
                    name: info.name,
                    actor_id: info.actor_id,
                    strategy: info.strategy,
                    intensity: info.intensity,
                    period_ms: info.period_ms,
                },
                children,
            })
        })
    }

    /// Stop the supervisor: its children stop in reverse start order first.
    pub async fn stop(&self) {
        let _ = self
            .actor
            .stop_and_wait(Some("shutdown".to_string()), None)
            .await;
    }
}

//! Child and supervisor specifications: plain data, cheap to clone. The constructor of a nested
//! supervisor's spec, `ChildSpec::supervisor`, lives with the actor it starts, in
//! [`crate::supervisor`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};
use serde::{Deserialize, Serialize};

use crate::error::{SpecError, StartError, SupervisorError};
use crate::events::EventSink;
use crate::intensity::Backoff;
use crate::policy::{AutoShutdown, Restart, Strategy};

/// What a start function returns.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, StartError>> + Send>>;

/// Starts one incarnation of a child, linked under the given supervisor cell (use
/// `spawn_linked` with it). It must return once the child is started (its `pre_start` done).
pub type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// The per-start arguments of
/// [`SupervisorHandle::start_from_template_with`](crate::SupervisorHandle::start_from_template_with),
/// type-erased on their way to the supervisor, with the name of their type for the error when
/// the template takes another one.
pub struct TemplateArgs {
    value: Box<dyn Any + Send>,
    type_name: &'static str,
}

impl TemplateArgs {
    /// Wrap one start's arguments.
    pub fn new<A: Send + 'static>(args: A) -> Self {
        Self {
            value: Box::new(args),
            type_name: std::any::type_name::<A>(),
        }
    }

    /// The arguments, if they are of type `A`.
    ///
    /// # Errors
    /// [`SupervisorError::TemplateArgs`] naming both types otherwise.
    pub fn take<A: 'static>(self) -> Result<A, SupervisorError> {
        match self.value.downcast::<A>() {
            Ok(a) => Ok(*a),
            Err(_) => Err(SupervisorError::TemplateArgs {
                expected: std::any::type_name::<A>().to_string(),
                got: self.type_name.to_string(),
            }),
        }
    }
}

impl fmt::Debug for TemplateArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateArgs")
            .field("type", &self.type_name)
            .finish_non_exhaustive()
    }
}

/// Builds the spec of the `n`-th child a dynamic supervisor starts from its template, from the
/// arguments of that start. Made by [`SupervisorSpec::template`] or
/// [`SupervisorSpec::template_with`], which check the arguments' type.
pub type ChildTemplate =
    Arc<dyn Fn(u64, TemplateArgs) -> Result<ChildSpec, SupervisorError> + Send + Sync>;

/// How a child is stopped when the supervisor stops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Kill at once (ractor's `kill`: the current handler is cancelled, `post_stop` is skipped).
    BrutalKill,
    /// Ask it to stop (its `post_stop` runs); kill it if it has not stopped after this long.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (OTP's default for supervisor children).
    Infinity,
}

/// Whether a child is a worker or a supervisor (introspection descends into supervisors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// Any actor.
    Worker,
    /// A [`Supervisor`](crate::Supervisor) of this crate.
    Supervisor,
}

/// One child: OTP's child spec.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique among the supervisor's children.
    pub id: String,
    /// Starts one incarnation.
    pub start: StartFn,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Whether its own exit can shut the supervisor down (see [`AutoShutdown`]); only a
    /// transient or temporary child may be significant.
    pub significant: bool,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}

/// OTP's default worker shutdown.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

impl ChildSpec {
    /// A permanent worker with a 5 s shutdown, started by `start`, which must spawn the actor
    /// linked under the supervisor cell it is given and return the actor's cell.
    ///
    /// ```no_run
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
    /// use ractor::ActorCell;
    /// use verisim_supervision::ChildSpec;
    ///
    /// let spec = ChildSpec::new("idle", |sup: ActorCell| async move {
    ///     let (actor, _join) = Actor::spawn_linked(None, Idle, (), sup).await?;
    ///     Ok(actor.get_cell())
    /// });
    /// ```
    pub fn new<F, Fut>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, StartError>> + Send + 'static,
    {
        Self {
            id: id.into(),
            start: Arc::new(move |sup| Box::pin(start(sup))),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(DEFAULT_SHUTDOWN),
            kind: ChildKind::Worker,
            significant: false,
        }
    }

    /// A permanent worker that spawns `actor` with a clone of `args` on every start.
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
    /// use verisim_supervision::{ChildSpec, Restart, Shutdown};
    ///
    /// let spec = ChildSpec::for_actor("idle", Idle, ())
    ///     .restart(Restart::Transient)
    ///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
    /// assert_eq!(spec.restart, Restart::Transient);
    /// ```
    pub fn for_actor<A>(id: impl Into<String>, actor: A, args: A::Arguments) -> Self
    where
        A: Actor + Clone,
        A::Arguments: Clone + Sync,
    {
        Self::new(id, move |sup: ActorCell| {
            let actor = actor.clone();
            let args = args.clone();
            async move {
                let (actor_ref, _join) = Actor::spawn_linked(None, actor, args, sup).await?;
                Ok(actor_ref.get_cell())
            }
        })
    }

    /// Set the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Set the shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Set the child kind.
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }

    /// Mark the child significant (OTP 24): when it ends on its own and is not restarted, the
    /// supervisor's [`AutoShutdown`] decides whether the supervisor shuts itself down. Checked
    /// when the child is given to a supervisor: it must be transient or temporary, and the
    /// supervisor's `auto_shutdown` must not be `Never`.
    ///
    /// A job that is done when its one significant step is done:
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
    ///     AutoShutdown, ChildSpec, Restart, Strategy, SupervisorHandle, SupervisorSpec,
    /// };
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let job = SupervisorSpec::new("job", Strategy::OneForOne)
    ///     .auto_shutdown(AutoShutdown::AnySignificant)
    ///     .child(ChildSpec::for_actor("metrics", Idle, ()))
    ///     .child(
    ///         ChildSpec::for_actor("step", Idle, ())
    ///             .restart(Restart::Transient)
    ///             .significant(true),
    ///     );
    /// let (job, join) = SupervisorHandle::start(job).await?;
    /// let step = job.child("step").await?.cell.ok_or("step is not running")?;
    /// step.stop(None); // the step finishes normally...
    /// join.await?; // ...and the whole job shuts itself down
    /// assert!(!job.is_alive());
    /// # Ok(())
    /// # }
    /// ```
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Whether this child is valid under a supervisor with this `auto_shutdown` (OTP's
    /// `check_childspec`).
    ///
    /// # Errors
    /// [`SpecError`] when the child is significant and permanent, or significant under `Never`.
    pub fn check(&self, auto_shutdown: AutoShutdown) -> Result<(), SpecError> {
        if !self.significant {
            return Ok(());
        }
        if auto_shutdown == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown(self.id.clone()));
        }
        if self.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent(self.id.clone()));
        }
        Ok(())
    }
}

/// A supervisor: strategy, intensity, optional backoff and dynamic limits, children in start order.
#[derive(Clone)]
pub struct SupervisorSpec {
    /// Shown in introspection (not registered with ractor: names there are process-global).
    pub name: String,
    /// Which children a restart touches.
    pub strategy: Strategy,
    /// At most this many restarts within `period`; one more and the supervisor gives up.
    pub intensity: u32,
    /// See `intensity`.
    pub period: Duration,
    /// Optional delay before restarts.
    pub backoff: Option<Backoff>,
    /// Whether significant children ending shuts the supervisor down.
    pub auto_shutdown: AutoShutdown,
    /// Maximum number of running or restarting children that `start_child` allows.
    pub max_children: Option<usize>,
    /// Children, started in this order and stopped in reverse.
    pub children: Vec<ChildSpec>,
    /// For dynamic supervisors: the one spec that `start_from_template` instantiates.
    pub template: Option<ChildTemplate>,
    /// Where this supervisor reports its events (see [`crate::events`]); not inherited by
    /// nested supervisors.
    pub events: Option<EventSink>,
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("backoff", &self.backoff)
            .field("auto_shutdown", &self.auto_shutdown)
            .field("max_children", &self.max_children)
            .field("children", &self.children)
            .field("template", &self.template.is_some())
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl SupervisorSpec {
    /// OTP's defaults: intensity 1 in 5 s, no children.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            backoff: None,
            auto_shutdown: AutoShutdown::Never,
            max_children: None,
            children: Vec::new(),
            template: None,
            events: None,
        }
    }

    /// Report this supervisor's events to `sink` (see [`crate::events`] for its rules).
    pub fn events(mut self, sink: EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    /// At most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = max_restarts;
        self.period = period;
        self
    }

    /// Delay restarts exponentially.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Shut the supervisor down when significant children end (OTP 24's `auto_shutdown`).
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Limit the children `start_child` may add.
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// Append a child.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// A dynamic supervisor's child template: `template(n)` is the spec of the `n`-th child
    /// started by [`SupervisorHandle::start_from_template`](crate::SupervisorHandle::start_from_template).
    pub fn template<F>(self, template: F) -> Self
    where
        F: Fn(u64) -> ChildSpec + Send + Sync + 'static,
    {
        self.template_with(move |n, ()| template(n))
    }

    /// A dynamic supervisor's child template that takes arguments on every start (Elixir's
    /// `DynamicSupervisor.start_child` with a per-child argument, or its `extra_arguments`
    /// when the closure captures them): `template(n, args)` is the spec of the `n`-th child,
    /// started by [`SupervisorHandle::start_from_template_with(args)`](crate::SupervisorHandle::start_from_template_with).
    /// A call with arguments of another type is refused with [`SupervisorError::TemplateArgs`].
    pub fn template_with<A, F>(mut self, template: F) -> Self
    where
        A: Send + 'static,
        F: Fn(u64, A) -> ChildSpec + Send + Sync + 'static,
    {
        self.template = Some(Arc::new(move |n, args: TemplateArgs| {
            args.take::<A>().map(|a| template(n, a))
        }));
        self
    }

    /// Check every child against this spec before anything starts (OTP's `check_childspecs`):
    /// unique ids, and significant children only where they are valid.
    /// [`SupervisorHandle::start`](crate::SupervisorHandle::start) runs it for you.
    ///
    /// # Errors
    /// [`SupervisorError::DuplicateChild`] or [`SupervisorError::InvalidChildSpec`].
    ///
    /// ```
    /// use verisim_supervision::{
    ///     ChildSpec, SpecError, StartError, Strategy, SupervisorError, SupervisorSpec,
    /// };
    /// # let child = |id: &str| {
    /// #     ChildSpec::new(id, |_sup| async { Err::<ractor::ActorCell, _>(StartError::new("unused")) })
    /// # };
    /// // `child(id)` is any child spec; children are permanent unless told otherwise.
    /// let spec = SupervisorSpec::new("s", Strategy::OneForOne).child(child("a").significant(true));
    /// assert_eq!(
    ///     spec.check(),
    ///     Err(SupervisorError::InvalidChildSpec(
    ///         SpecError::SignificantWithoutAutoShutdown("a".into())
    ///     ))
    /// );
    /// ```
    pub fn check(&self) -> Result<(), SupervisorError> {
        let mut seen = std::collections::HashSet::with_capacity(self.children.len());
        for child in &self.children {
            if !seen.insert(child.id.as_str()) {
                return Err(SupervisorError::DuplicateChild(child.id.clone()));
            }
            child.check(self.auto_shutdown)?;
        }
        Ok(())
    }
}

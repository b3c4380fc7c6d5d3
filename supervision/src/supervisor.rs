//! The supervisor actor and its restart engine: children in start order, the restart ring,
//! strategies, backoff, giving up, and one arm per message. Operator actions live in
//! [`operator`].
//!
//! Events are matched to children by `ActorId`. Before the supervisor stops a child on purpose
//! (a sibling restart, an operator action, shutdown) it forgets the child's cell, so the exit
//! event of that incarnation arrives as a stale event and is ignored, like OTP's unlink-and-flush.
//!
//! Children live in a `Vec` in start order; two maps find them without a scan (child id →
//! position, running incarnation's actor id → child id), so starting, restarting and stopping a
//! child cost the same with 10,000 siblings as with ten. Only `push_child`, `remove_child` and
//! `retain_children` change the `Vec`'s layout, and they keep the maps in step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join, join_all};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort,
    SupervisionEvent,
};

use crate::error::{StartError, SupervisorError};
use crate::events::{self, EventKind, EventSink};
use crate::intensity::{Backoff, RestartIntensity};
use crate::introspect::{ChildCounts, ChildInfo, ChildState, SupervisorInfo};
use crate::policy::{self, AutoShutdown, ExitKind, GAVE_UP_REASON, Restart, Strategy};
use crate::spec::{ChildKind, ChildSpec, ChildTemplate, Shutdown, SupervisorSpec, TemplateArgs};

mod operator;

/// How long to wait for a killed actor to finish its exit before moving on.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The supervisor actor. Spawn it with [`crate::SupervisorHandle::start`], or nest it with
/// [`ChildSpec::supervisor`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Supervisor;

// Here rather than in `spec`: the spec is plain data, and only this constructor needs the actor.
impl ChildSpec {
    /// A nested supervisor: permanent, `Shutdown::Infinity`, kind supervisor.
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> Self {
        let spec = Arc::new(spec);
        let mut child = Self::new(id, move |sup: ActorCell| {
            let spec = SupervisorSpec::clone(&spec);
            async move {
                match Actor::spawn_linked(None, Supervisor, spec, sup).await {
                    Ok((actor_ref, _join)) => Ok(actor_ref.get_cell()),
                    Err(e) => Err(StartError(SupervisorError::from_spawn(e).to_string())),
                }
            }
        });
        child.kind = ChildKind::Supervisor;
        child.shutdown = Shutdown::Infinity;
        child
    }
}

/// The supervisor's protocol. Use [`crate::SupervisorHandle`] rather than sending these directly.
pub enum SupervisorMsg {
    /// The supervisor and its children.
    Info(RpcReplyPort<SupervisorInfo>),
    /// OTP's `count_children`, counted where the children are kept.
    CountChildren(RpcReplyPort<ChildCounts>),
    /// One child, by id.
    Child(String, RpcReplyPort<Option<ChildInfo>>),
    /// Add and start a child at run time.
    StartChild(ChildSpec, RpcReplyPort<Result<ActorCell, SupervisorError>>),
    /// Add and start a child from the template, with this start's arguments.
    StartFromTemplate(
        TemplateArgs,
        RpcReplyPort<Result<(String, ActorCell), SupervisorError>>,
    ),
    /// A child's spec, by id (OTP's `get_childspec`).
    GetChildSpec(String, RpcReplyPort<Result<ChildSpec, SupervisorError>>),
    /// Stop a child and keep its spec (temporary children are removed).
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// Stop a child if it runs, then start it again.
    RestartChild(String, RpcReplyPort<Result<ActorCell, SupervisorError>>),
    /// Remove a stopped child's spec.
    DeleteChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// A start during a restart failed: try again (OTP's `try_again_restart`).
    RetryRestart(String),
    /// A backoff delay elapsed for the restart with this token.
    DelayedRestart(u64),
}

impl ractor::Message for SupervisorMsg {}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    state: ChildState,
    restarts: u64,
    last_failure: Option<String>,
    started_at: Instant,
    // Consecutive restarts, for backoff.
    streak: u32,
    // The delayed restart this child waits for.
    pending: Option<Pending>,
    // Started from the template: stopped together with the template children started next to
    // it when the supervisor terminates (OTP's `terminate_dynamic_children`).
    dynamic: bool,
}

/// A backoff wait. The token tells the timer's message for this wait from one that an operator
/// action or a later restart has made stale.
#[derive(Clone, Copy, Debug)]
struct Pending {
    token: u64,
    delay: Duration,
}

impl Child {
    fn running(spec: ChildSpec, cell: ActorCell) -> Self {
        Self {
            spec,
            cell: Some(cell),
            state: ChildState::Running,
            restarts: 0,
            last_failure: None,
            started_at: Instant::now(),
            streak: 0,
            pending: None,
            dynamic: false,
        }
    }

    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            actor_id: self.cell.as_ref().map(|c| actor_id_text(c.get_id())),
            kind: self.spec.kind,
            restart: self.spec.restart,
            significant: self.spec.significant,
            state: self.state,
            restart_count: self.restarts,
            last_failure: self.last_failure.clone(),
            restart_delay_ms: self
                .pending
                .map(|p| u64::try_from(p.delay.as_millis()).unwrap_or(u64::MAX)),
            cell: self.cell.clone(),
        }
    }

    fn is_active(&self) -> bool {
        matches!(self.state, ChildState::Running | ChildState::Restarting)
    }
}

/// An actor id as ractor displays it (`"0.42"`), written without the formatting machinery:
/// `which_children` writes one per running child, and at 10,000 children `fmt::write` was a
/// fifth of its time.
fn actor_id_text(id: ActorId) -> String {
    let ActorId::Local(pid) = id else {
        return id.to_string();
    };
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = pid;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut text = String::with_capacity(2 + digits.len() - at);
    text.push_str("0.");
    for &d in &digits[at..] {
        text.push(char::from(d));
    }
    text
}

/// The supervisor's state: OTP's `#state{}`.
pub struct SupervisorState {
    name: String,
    strategy: Strategy,
    backoff: Option<Backoff>,
    auto_shutdown: AutoShutdown,
    max_children: Option<usize>,
    template: Option<ChildTemplate>,
    template_seq: u64,
    children: Vec<Child>,
    // Child id -> position in `children`.
    index: HashMap<String, usize>,
    // Actor id of an incarnation the supervisor started -> child id. An entry goes when that
    // incarnation's exit event arrives; a lookup checks the child's current cell, so an entry
    // of an incarnation stopped on purpose is never taken for the running one.
    actors: HashMap<ActorId, String>,
    intensity: RestartIntensity,
    next_token: u64,
    // Gave up or shut itself down: it is stopping, and reacts to nothing more.
    stopping: bool,
    events: Option<EventSink>,
}

/// Stop one incarnation according to its shutdown policy and wait until it has exited.
async fn shutdown(cell: ActorCell, how: Shutdown) {
    let reason = Some("shutdown".to_string());
    match how {
        Shutdown::BrutalKill => {
            let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
        }
        Shutdown::Timeout(limit) => {
            if cell.stop_and_wait(reason, Some(limit)).await.is_err() {
                let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
            }
        }
        Shutdown::Infinity => {
            if cell.stop_and_wait(reason, None).await.is_err() {
                let _ = cell.kill_and_wait(Some(KILL_WAIT)).await;
            }
        }
    }
}

/// Stop a group of incarnations at once and wait until all have exited, as OTP's
/// `terminate_dynamic_children` stops a `simple_one_for_one` supervisor's children (and
/// Elixir's `DynamicSupervisor` its children): every child is sent its exit first (a kill for
/// `BrutalKill`, a stop otherwise), then the exits are awaited in any order. The timeout runs
/// for the group from the moment the exits were sent, not per child in turn: when it expires,
/// every child of that timeout still running is killed. `Infinity` waits. OTP's group shares
/// one shutdown; a group here may mix them, so, as Elixir does, each distinct timeout has its
/// own timer and a child's own policy decides what happens to it.
async fn shutdown_group(cells: Vec<(ActorCell, Shutdown)>) {
    let sent = Instant::now();
    let mut by_timeout: Vec<(Duration, Vec<ActorCell>)> = Vec::new();
    let mut untimed = Vec::with_capacity(cells.len());
    for (cell, how) in cells {
        match how {
            Shutdown::BrutalKill => {
                cell.kill();
                untimed.push((cell, Some(KILL_WAIT)));
            }
            Shutdown::Infinity => {
                cell.stop(Some("shutdown".to_string()));
                untimed.push((cell, None));
            }
            Shutdown::Timeout(limit) => {
                cell.stop(Some("shutdown".to_string()));
                match by_timeout.iter_mut().find(|(d, _)| *d == limit) {
                    Some((_, group)) => group.push(cell),
                    None => by_timeout.push((limit, vec![cell])),
                }
            }
        }
    }
    let timed = by_timeout.into_iter().map(|(limit, group)| async move {
        let all = join_all(group.iter().map(|cell| cell.wait(None)));
        let Some(deadline) = sent.checked_add(limit) else {
            all.await;
            return;
        };
        if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
            let stragglers: Vec<&ActorCell> = group
                .iter()
                .filter(|cell| cell.get_status() != ActorStatus::Stopped)
                .collect();
            for cell in &stragglers {
                cell.kill();
            }
            join_all(stragglers.iter().map(|cell| cell.wait(Some(KILL_WAIT)))).await;
        }
    });
    let untimed = untimed.iter().map(|(cell, wait)| cell.wait(*wait));
    join(join_all(timed), join_all(untimed)).await;
}

impl SupervisorState {
    fn new(spec: &SupervisorSpec) -> Self {
        Self {
            name: spec.name.clone(),
            strategy: spec.strategy,
            backoff: spec.backoff,
            auto_shutdown: spec.auto_shutdown,
            max_children: spec.max_children,
            template: spec.template.clone(),
            template_seq: 0,
            children: Vec::with_capacity(spec.children.len()),
            index: HashMap::with_capacity(spec.children.len()),
            actors: HashMap::with_capacity(spec.children.len()),
            intensity: RestartIntensity::new(spec.intensity, spec.period),
            next_token: 0,
            stopping: false,
            events: spec.events.clone(),
        }
    }

    /// Report an event to the spec's sink, if any.
    fn emit(&self, kind: EventKind) {
        events::emit(self.events.as_ref(), &self.name, kind);
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The child whose running incarnation is `actor`; forgets `actor` (its exit event is
    /// being handled), so call it once per event.
    fn take_position_of_actor(&mut self, actor: ActorId) -> Option<usize> {
        let id = self.actors.remove(&actor)?;
        self.position(&id).filter(|&p| {
            self.children[p]
                .cell
                .as_ref()
                .is_some_and(|cell| cell.get_id() == actor)
        })
    }

    /// Remember which child a freshly started incarnation belongs to.
    fn note_incarnation(&mut self, cell: &ActorCell, id: &str) {
        self.actors.insert(cell.get_id(), id.to_string());
    }

    /// Append a running child.
    fn push_child(&mut self, spec: ChildSpec, cell: ActorCell) {
        self.note_incarnation(&cell, &spec.id);
        self.index.insert(spec.id.clone(), self.children.len());
        self.children.push(Child::running(spec, cell));
        debug_assert_eq!(
            self.index.len(),
            self.children.len(),
            "child ids are unique"
        );
    }

    /// Remove the child at `pos`; the ones after it move up by one.
    fn remove_child(&mut self, pos: usize) {
        let child = self.children.remove(pos);
        self.index.remove(&child.spec.id);
        for (p, c) in self.children.iter().enumerate().skip(pos) {
            self.index.insert(c.spec.id.clone(), p);
        }
        debug_assert_eq!(self.index.len(), self.children.len());
    }

    /// Keep only the children `keep` accepts.
    fn retain_children(&mut self, keep: impl FnMut(&Child) -> bool) {
        self.children.retain(keep);
        self.index.clear();
        for (p, c) in self.children.iter().enumerate() {
            self.index.insert(c.spec.id.clone(), p);
        }
    }

    /// Stop the child at `pos` if it runs; it no longer waits for a delayed restart either.
    async fn stop_child(&mut self, pos: usize) {
        let child = &mut self.children[pos];
        child.pending = None;
        if let Some(cell) = child.cell.take() {
            shutdown(cell, child.spec.shutdown).await;
        }
    }

    /// Stop every child, last started first, as OTP's `terminate/2` does. Children started
    /// from the template next to each other are one step of that order: they are stopped
    /// together ([`shutdown_group`]), as OTP stops a `simple_one_for_one` supervisor's
    /// children and Elixir a `DynamicSupervisor`'s; every other child is stopped on its own,
    /// and the next step begins once it (or the whole group) has exited.
    async fn stop_all(&mut self) {
        let mut end = self.children.len();
        while end > 0 {
            let start = if self.children[end - 1].dynamic {
                self.children[..end]
                    .iter()
                    .rposition(|c| !c.dynamic)
                    .map_or(0, |p| p + 1)
            } else {
                end - 1
            };
            if end - start == 1 {
                self.stop_child(start).await;
            } else {
                let group = self.children[start..end]
                    .iter_mut()
                    .filter_map(|child| {
                        child.pending = None;
                        child.cell.take().map(|cell| (cell, child.spec.shutdown))
                    })
                    .collect();
                shutdown_group(group).await;
            }
            for child in &mut self.children[start..end] {
                if child.state != ChildState::Failed {
                    child.state = ChildState::Stopped;
                }
            }
            end = start;
        }
    }

    /// OTP's `count_children`: one pass over the children, no list built.
    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.children.len(),
            ..ChildCounts::default()
        };
        for child in &self.children {
            counts.active += usize::from(child.state == ChildState::Running);
            match child.spec.kind {
                ChildKind::Supervisor => counts.supervisors += 1,
                ChildKind::Worker => counts.workers += 1,
            }
        }
        counts
    }

    fn info(&self, myself: &ActorCell) -> SupervisorInfo {
        SupervisorInfo {
            name: self.name.clone(),
            actor_id: myself.get_id().to_string(),
            strategy: self.strategy,
            intensity: self.intensity.max_restarts(),
            period_ms: u64::try_from(self.intensity.period().as_millis()).unwrap_or(u64::MAX),
            auto_shutdown: self.auto_shutdown,
            children: self.children.iter().map(Child::info).collect(),
        }
    }

    /// A child's incarnation exited (a fresh event, not one we caused).
    async fn on_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        pos: usize,
        kind: ExitKind,
        gave_up_child: bool,
        what: Option<String>,
    ) {
        let child = &mut self.children[pos];
        child.cell = None;
        if kind == ExitKind::Abnormal || gave_up_child {
            child.last_failure = what.clone();
            let child = child.spec.id.clone();
            self.emit(EventKind::ChildFailed {
                child,
                reason: what,
            });
        }
        let child = &mut self.children[pos];
        if !policy::should_restart(child.spec.restart, kind) {
            let significant = child.spec.significant;
            if child.spec.restart == Restart::Temporary {
                self.remove_child(pos);
            } else {
                child.state = if kind == ExitKind::Abnormal || gave_up_child {
                    ChildState::Failed
                } else {
                    ChildState::Stopped
                };
            }
            // The child that exited is no longer active, so "any other" is "any".
            let others = self
                .children
                .iter()
                .any(|c| c.spec.significant && c.is_active());
            if policy::auto_shutdown_due(self.auto_shutdown, significant, others) {
                self.shut_down_on_own(myself).await;
            }
            return;
        }
        if let Some(backoff) = self.backoff
            && child.started_at.elapsed() >= backoff.reset_after
        {
            child.streak = 0;
        }
        if !self.intensity.record(Instant::now()) {
            self.give_up(myself).await;
            return;
        }
        self.restart_scope_of(myself, pos).await;
    }

    /// Restart the child at `pos` and whatever the strategy adds to it.
    async fn restart_scope_of(&mut self, myself: &ActorRef<SupervisorMsg>, pos: usize) {
        let failed_id = self.children[pos].spec.id.clone();
        let scope = policy::restart_scope(self.strategy, pos, self.children.len());
        let ids: Vec<String> = self.children[scope]
            .iter()
            .map(|c| c.spec.id.clone())
            .collect();
        for id in ids.iter().rev().filter(|id| **id != failed_id) {
            if let Some(p) = self.position(id) {
                self.stop_child(p).await;
            }
        }
        // OTP removes temporary siblings instead of restarting them.
        let temporary: Vec<&String> = ids
            .iter()
            .filter(|id| {
                **id != failed_id
                    && self
                        .position(id)
                        .is_some_and(|p| self.children[p].spec.restart == Restart::Temporary)
            })
            .collect();
        if !temporary.is_empty() {
            let temporary: std::collections::HashSet<String> =
                temporary.into_iter().cloned().collect();
            self.retain_children(|c| !temporary.contains(&c.spec.id));
        }
        let to_start: Vec<String> = ids
            .into_iter()
            .filter(|id| self.position(id).is_some())
            .collect();

        let delay = match (self.backoff, self.position(&failed_id)) {
            (Some(backoff), Some(p)) => {
                let child = &mut self.children[p];
                let delay = backoff.delay(child.streak);
                child.streak = child.streak.saturating_add(1);
                Some(delay)
            }
            _ => None,
        };
        for id in &to_start {
            if let Some(p) = self.position(id) {
                self.children[p].state = ChildState::Restarting;
            }
        }
        match delay {
            Some(delay) if !delay.is_zero() => {
                self.next_token += 1;
                let token = self.next_token;
                for id in &to_start {
                    if let Some(p) = self.position(id) {
                        self.children[p].pending = Some(Pending { token, delay });
                    }
                }
                tracing::debug!(supervisor = %self.name, child = %failed_id, ?delay, "restart delayed");
                // The timer task ends on its own; a stale token is ignored on arrival.
                drop(myself.send_after(delay, move || SupervisorMsg::DelayedRestart(token)));
            }
            _ => self.start_in_order(myself, &to_start).await,
        }
    }

    /// Start these children (all `Restarting`) in order. A failed start leaves it and the rest
    /// `Restarting` and schedules a retry that counts against the intensity, as OTP does.
    async fn start_in_order(&mut self, myself: &ActorRef<SupervisorMsg>, ids: &[String]) {
        for (k, id) in ids.iter().enumerate() {
            let Some(p) = self.position(id) else { continue };
            let start = self.children[p].spec.start.clone();
            let result = start(myself.get_cell()).await;
            if let Ok(cell) = &result {
                self.note_incarnation(cell, id);
            }
            let child = &mut self.children[p];
            child.pending = None;
            match result {
                Ok(cell) => {
                    child.cell = Some(cell);
                    child.state = ChildState::Running;
                    child.restarts += 1;
                    child.started_at = Instant::now();
                    let restart_count = child.restarts;
                    self.emit(EventKind::ChildRestarted {
                        child: id.clone(),
                        restart_count,
                        operator: false,
                    });
                }
                Err(e) => {
                    tracing::warn!(supervisor = %self.name, child = %id, error = %e, "restart failed; trying again");
                    child.last_failure = Some(format!("start failed: {e}"));
                    self.emit(EventKind::RestartFailed {
                        child: id.clone(),
                        reason: e.0.clone(),
                    });
                    for rest in &ids[k + 1..] {
                        if let Some(q) = self.position(rest) {
                            self.children[q].pending = None;
                        }
                    }
                    if myself
                        .cast(SupervisorMsg::RetryRestart(id.clone()))
                        .is_err()
                    {
                        tracing::debug!(supervisor = %self.name, "stopping; no retry");
                    }
                    return;
                }
            }
        }
    }

    /// More restarts than the intensity allows: stop everything in reverse order and exit with
    /// reason `shutdown`, which the parent sees as this child's exit (escalation).
    async fn give_up(&mut self, myself: &ActorRef<SupervisorMsg>) {
        tracing::error!(supervisor = %self.name, "reached maximum restart intensity; shutting down");
        self.emit(EventKind::GaveUp {
            intensity: self.intensity.max_restarts(),
            period_ms: u64::try_from(self.intensity.period().as_millis()).unwrap_or(u64::MAX),
        });
        self.stopping = true;
        self.stop_all().await;
        myself.stop(Some(GAVE_UP_REASON.to_string()));
    }

    /// Significant children ended (`auto_shutdown`): stop everything in reverse order and exit
    /// with reason `shutdown`, a normal exit for the parent, as OTP's supervisor does.
    async fn shut_down_on_own(&mut self, myself: &ActorRef<SupervisorMsg>) {
        tracing::info!(supervisor = %self.name, mode = ?self.auto_shutdown, "significant children ended; shutting down");
        self.emit(EventKind::AutoShutdown);
        self.stopping = true;
        self.stop_all().await;
        myself.stop(Some("shutdown".to_string()));
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        spec: SupervisorSpec,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Every spec is checked before any child starts, as OTP's `init` does.
        if let Err(e) = spec.check() {
            return Err(Box::new(e));
        }
        let mut state = SupervisorState::new(&spec);
        for child in spec.children {
            match (child.start)(myself.get_cell()).await {
                Ok(cell) => state.push_child(child, cell),
                Err(e) => {
                    // Children that did start stop in reverse order before we report.
                    state.stop_all().await;
                    return Err(Box::new(SupervisorError::ChildStartFailed {
                        child: child.id,
                        reason: e.0,
                    }));
                }
            }
        }
        tracing::debug!(supervisor = %state.name, children = state.children.len(), "started");
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Info(reply) => {
                let _ = reply.send(state.info(&myself.get_cell()));
            }
            SupervisorMsg::CountChildren(reply) => {
                let _ = reply.send(state.count_children());
            }
            SupervisorMsg::Child(id, reply) => {
                let _ = reply.send(state.position(&id).map(|p| state.children[p].info()));
            }
            SupervisorMsg::StartChild(spec, reply) => {
                let _ = reply.send(state.start_child(&myself, spec).await);
            }
            SupervisorMsg::StartFromTemplate(args, reply) => {
                let _ = reply.send(state.start_from_template(&myself, args).await);
            }
            SupervisorMsg::GetChildSpec(id, reply) => {
                let _ = reply.send(state.get_childspec(&id));
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let _ = reply.send(state.terminate_child(&id).await);
            }
            SupervisorMsg::RestartChild(id, reply) => {
                let _ = reply.send(state.restart_child(&myself, &id).await);
            }
            SupervisorMsg::DeleteChild(id, reply) => {
                let _ = reply.send(state.delete_child(&id));
            }
            SupervisorMsg::RetryRestart(id) => {
                let Some(p) = state.position(&id) else {
                    return Ok(());
                };
                let child = &state.children[p];
                if state.stopping
                    || child.state != ChildState::Restarting
                    || child.pending.is_some()
                {
                    return Ok(());
                }
                if !state.intensity.record(Instant::now()) {
                    state.give_up(&myself).await;
                } else {
                    state.restart_scope_of(&myself, p).await;
                }
            }
            SupervisorMsg::DelayedRestart(token) => {
                let ids: Vec<String> = state
                    .children
                    .iter()
                    .filter(|c| {
                        c.pending.is_some_and(|p| p.token == token)
                            && c.state == ChildState::Restarting
                    })
                    .map(|c| c.spec.id.clone())
                    .collect();
                if !state.stopping && !ids.is_empty() {
                    state.start_in_order(&myself, &ids).await;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, kind, gave_up_child, what) = match event {
            SupervisionEvent::ActorTerminated(cell, _last_state, reason) => {
                let kind = policy::classify(false, reason.as_deref());
                let gave_up = reason.as_deref() == Some(GAVE_UP_REASON);
                (cell.get_id(), kind, gave_up, reason)
            }
            SupervisionEvent::ActorFailed(cell, err) => (
                cell.get_id(),
                ExitKind::Abnormal,
                false,
                Some(err.to_string()),
            ),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        match state.take_position_of_actor(actor) {
            Some(pos) => {
                tracing::debug!(supervisor = %state.name, child = %state.children[pos].spec.id, ?kind, reason = ?what, "child exited");
                state.on_exit(&myself, pos, kind, gave_up_child, what).await;
            }
            None => {
                tracing::trace!(supervisor = %state.name, %actor, "exit of a stopped incarnation")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ractor::ActorId;

    use super::actor_id_text;

    #[test]
    fn actor_id_text_is_ractors_display() {
        let ids = [0, 1, 9, 10, 42, 99_999, 1 << 40, u64::MAX];
        for pid in ids {
            let id = ActorId::Local(pid);
            assert_eq!(actor_id_text(id), id.to_string());
        }
        let remote = ActorId::Remote { node_id: 3, pid: 7 };
        assert_eq!(actor_id_text(remote), remote.to_string());
    }
}

//! What a supervisor reports about itself: plain, serde-serializable values.

use ractor::ActorCell;
use serde::{Deserialize, Serialize};

use crate::policy::{AutoShutdown, Restart, Strategy};
use crate::spec::ChildKind;

/// A child's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// An incarnation is running.
    Running,
    /// Waiting to be started again (backoff delay, or a start that failed and is retried).
    Restarting,
    /// Exited normally or was terminated by an operator, and is not restarted.
    Stopped,
    /// Exited abnormally and is not restarted (or is a supervisor that gave up).
    Failed,
}

/// One child as its supervisor sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildInfo {
    /// The spec's id.
    pub id: String,
    /// The running incarnation's ractor id (`"0.42"`), if any.
    pub actor_id: Option<String>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Restart type.
    pub restart: Restart,
    /// Whether it is significant for the supervisor's `auto_shutdown` (omitted when false).
    #[serde(skip_serializing_if = "is_false", default)]
    pub significant: bool,
    /// Lifecycle state.
    pub state: ChildState,
    /// Starts after the first one (automatic and operator restarts).
    pub restart_count: u64,
    /// The last abnormal exit or failed start, as text (panic messages included).
    pub last_failure: Option<String>,
    /// While `restarting` in a backoff wait: how long that wait is, in milliseconds, counted
    /// from when the supervisor handled the exit. `None` when no wait is pending.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restart_delay_ms: Option<u64>,
    /// The running incarnation (not serialized).
    #[serde(skip)]
    pub cell: Option<ActorCell>,
}

fn is_never(a: &AutoShutdown) -> bool {
    *a == AutoShutdown::Never
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// OTP's `count_children`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// All child specs held.
    pub specs: usize,
    /// Children with a running incarnation.
    pub active: usize,
    /// Specs of kind supervisor.
    pub supervisors: usize,
    /// Specs of kind worker.
    pub workers: usize,
}

/// A supervisor and its children, as one answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SupervisorInfo {
    /// The spec's name.
    pub name: String,
    /// The supervisor actor's id.
    pub actor_id: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Maximum restarts within the period.
    pub intensity: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// When significant children shut it down (omitted when `never`).
    #[serde(skip_serializing_if = "is_never", default)]
    pub auto_shutdown: AutoShutdown,
    /// Children in start order.
    pub children: Vec<ChildInfo>,
}

/// The whole tree under a supervisor, for the admin API and CLI.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TreeNode {
    /// This supervisor.
    #[serde(flatten)]
    pub supervisor: SupervisorInfoHeader,
    /// Its children; supervisors carry their own subtree.
    pub children: Vec<TreeChild>,
}

/// [`SupervisorInfo`] without the children (they are in [`TreeNode::children`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SupervisorInfoHeader {
    /// The spec's name.
    pub name: String,
    /// The supervisor actor's id.
    pub actor_id: String,
    /// Restart strategy.
    pub strategy: Strategy,
    /// Maximum restarts within the period.
    pub intensity: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
}

/// A child in the tree.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TreeChild {
    /// The child as its supervisor sees it.
    #[serde(flatten)]
    pub info: ChildInfo,
    /// For a running child supervisor: its own tree.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subtree: Option<Box<TreeNode>>,
}

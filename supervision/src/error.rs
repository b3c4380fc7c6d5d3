//! Typed errors of the supervision crate.

use ractor::SpawnErr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a child's start function failed. The message is kept as text: it crosses actor
/// boundaries and ends up in introspection and in the parent's error.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{0}")]
pub struct StartError(pub String);

impl StartError {
    /// A start error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<SpawnErr> for StartError {
    fn from(e: SpawnErr) -> Self {
        match e {
            // ractor wraps pre_start's error (or panic message); keep just that text.
            SpawnErr::StartupFailed(inner) => Self(inner.to_string()),
            other => Self(other.to_string()),
        }
    }
}

/// A child spec that the supervisor refuses before starting anything (OTP's `check_childspecs`
/// errors). Returned inside [`SupervisorError::InvalidChildSpec`].
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum SpecError {
    /// A significant child must be `Transient` or `Temporary` (OTP's
    /// `{bad_combination, [{restart, permanent}, {significant, true}]}`).
    #[error(
        "child `{0}` is significant and permanent; a significant child must be transient or temporary"
    )]
    SignificantPermanent(String),
    /// A significant child under a supervisor whose `auto_shutdown` is `Never` (OTP's
    /// `{bad_combination, [{auto_shutdown, never}, {significant, true}]}`).
    #[error("child `{0}` is significant but the supervisor's auto_shutdown is `never`")]
    SignificantWithoutAutoShutdown(String),
}

/// Errors of supervisor operations.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum SupervisorError {
    /// A child's start function failed; names the child.
    #[error("child `{child}` failed to start: {reason}")]
    ChildStartFailed {
        /// The child's id.
        child: String,
        /// The start function's error.
        reason: String,
    },
    /// Two children with the same id.
    #[error("a child with id `{0}` already exists")]
    DuplicateChild(String),
    /// A child spec is invalid for this supervisor; nothing was started.
    #[error("invalid child spec: {0}")]
    InvalidChildSpec(#[from] SpecError),
    /// No child has this id.
    #[error("no child with id `{0}`")]
    NoSuchChild(String),
    /// The operation needs the child to be stopped first (OTP's `{error, running}`).
    #[error("child `{0}` is running or restarting")]
    ChildRunning(String),
    /// The supervisor already runs its maximum number of children.
    #[error("the supervisor already runs its maximum of {0} children")]
    MaxChildren(usize),
    /// `start_from_template` on a supervisor without a child template.
    #[error("the supervisor has no child template")]
    NoTemplate,
    /// `start_from_template_with` was given arguments of another type than the template takes.
    #[error("the child template takes arguments of type `{expected}`, got `{got}`")]
    TemplateArgs {
        /// The type the template was declared with.
        expected: String,
        /// The type it was called with.
        got: String,
    },
    /// The supervisor is not running (it stopped, gave up, or did not answer in time).
    #[error("supervisor unavailable: {0}")]
    Unavailable(String),
    /// The supervisor actor itself could not be spawned.
    #[error("spawning the supervisor failed: {0}")]
    Spawn(String),
}

impl SupervisorError {
    /// Recover our error from a failed supervisor spawn (pre_start returns it boxed).
    pub(crate) fn from_spawn(e: SpawnErr) -> Self {
        match e {
            SpawnErr::StartupFailed(inner) => match inner.downcast::<SupervisorError>() {
                Ok(ours) => *ours,
                Err(other) => Self::Spawn(other.to_string()),
            },
            other => Self::Spawn(other.to_string()),
        }
    }
}

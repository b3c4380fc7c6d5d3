//! The OTP restart rules as plain functions: which exits restart a child, and which children a
//! restart touches. The supervisor actor calls these; tests call them without any actor.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Which children are restarted when one of them exits and must be restarted (OTP's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: the others are stopped in reverse start order, then all start in order.
    OneForAll,
    /// The child that exited and every child started after it.
    RestForOne,
}

/// When a child that exited is restarted (OTP's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit.
    Transient,
    /// Never restarted; removed from the supervisor when it exits.
    Temporary,
}

/// When a supervisor shuts itself down because significant children ended (OTP 24's
/// `auto_shutdown` flag). Only exits a child makes on its own count: a child that the supervisor
/// stops (an operator `terminate_child`, a sibling's restart, shutdown) never triggers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never (the default); significant children are refused.
    #[default]
    Never,
    /// When any significant child ends and is not restarted: a transient one that exits
    /// normally, or a temporary one that exits in any way.
    AnySignificant,
    /// When the last significant child that is running (or waiting for a restart) ends in that
    /// way.
    AllSignificant,
}

/// How an exit counts for the restart rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// OTP's `normal`, `shutdown` and `{shutdown, _}`.
    Normal,
    /// Anything else: a panic, an `Err` from a handler, a kill, any other stop reason.
    Abnormal,
}

/// The stop reason a supervisor exits with after exceeding its restart intensity. It starts
/// with `shutdown`, so (as in OTP) a *transient* parent entry does not restart it.
pub const GAVE_UP_REASON: &str = "shutdown: reached_max_restart_intensity";

/// Classify a ractor exit. `failed` is true for `SupervisionEvent::ActorFailed` (a panic or an
/// `Err` from a handler); otherwise `reason` is the stop reason of `ActorTerminated`.
///
/// Normal: no reason, `"normal"`, `"shutdown"`, `"shutdown: …"`, and ractor's `"Drained"`.
/// Abnormal: a failure, ractor's `"killed"`, and any other reason (as OTP treats any other term).
pub fn classify(failed: bool, reason: Option<&str>) -> ExitKind {
    if failed {
        return ExitKind::Abnormal;
    }
    match reason {
        None | Some("normal") | Some("shutdown") | Some("Drained") => ExitKind::Normal,
        Some(r) if r.starts_with("shutdown:") => ExitKind::Normal,
        Some(_) => ExitKind::Abnormal,
    }
}

/// Whether a child with restart type `restart` is restarted after an exit of kind `exit`.
pub fn should_restart(restart: Restart, exit: ExitKind) -> bool {
    match restart {
        Restart::Permanent => true,
        Restart::Transient => exit == ExitKind::Abnormal,
        Restart::Temporary => false,
    }
}

/// Whether a supervisor shuts itself down after a child that is *not* restarted ended on its
/// own: `significant` tells whether that child is significant, `other_significant_active`
/// whether any other significant child is still running or waiting for a restart (OTP's
/// `do_auto_shutdown/2`).
pub fn auto_shutdown_due(
    mode: AutoShutdown,
    significant: bool,
    other_significant_active: bool,
) -> bool {
    match mode {
        AutoShutdown::Never => false,
        _ if !significant => false,
        AutoShutdown::AnySignificant => true,
        AutoShutdown::AllSignificant => !other_significant_active,
    }
}

/// The positions (in start order) that a restart of the child at `index` touches, among `len`
/// children. Children in the range other than `index` are stopped in reverse order first; then
/// the whole range starts in order (temporary ones among the others are removed instead).
pub fn restart_scope(strategy: Strategy, index: usize, len: usize) -> Range<usize> {
    debug_assert!(index < len, "restart_scope: index {index} out of {len}");
    match strategy {
        Strategy::OneForOne => index..index + 1,
        Strategy::OneForAll => 0..len,
        Strategy::RestForOne => index..len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_follows_otp_reasons() {
        assert_eq!(classify(false, None), ExitKind::Normal);
        assert_eq!(classify(false, Some("normal")), ExitKind::Normal);
        assert_eq!(classify(false, Some("shutdown")), ExitKind::Normal);
        assert_eq!(classify(false, Some(GAVE_UP_REASON)), ExitKind::Normal);
        assert_eq!(classify(false, Some("killed")), ExitKind::Abnormal);
        assert_eq!(classify(false, Some("disk gone")), ExitKind::Abnormal);
        assert_eq!(classify(true, None), ExitKind::Abnormal);
    }

    #[test]
    fn restart_types_follow_otp() {
        use ExitKind::*;
        use Restart::*;
        assert!(should_restart(Permanent, Normal));
        assert!(should_restart(Permanent, Abnormal));
        assert!(!should_restart(Transient, Normal));
        assert!(should_restart(Transient, Abnormal));
        assert!(!should_restart(Temporary, Normal));
        assert!(!should_restart(Temporary, Abnormal));
    }

    #[test]
    fn auto_shutdown_follows_otp() {
        use AutoShutdown::*;
        for others in [false, true] {
            assert!(!auto_shutdown_due(Never, true, others));
            assert!(!auto_shutdown_due(AnySignificant, false, others));
            assert!(!auto_shutdown_due(AllSignificant, false, others));
            assert!(auto_shutdown_due(AnySignificant, true, others));
        }
        assert!(auto_shutdown_due(AllSignificant, true, false));
        assert!(!auto_shutdown_due(AllSignificant, true, true));
    }

    #[test]
    fn scopes_follow_otp() {
        assert_eq!(restart_scope(Strategy::OneForOne, 2, 5), 2..3);
        assert_eq!(restart_scope(Strategy::OneForAll, 2, 5), 0..5);
        assert_eq!(restart_scope(Strategy::RestForOne, 2, 5), 2..5);
        assert_eq!(restart_scope(Strategy::RestForOne, 4, 5), 4..5);
    }
}

//! Operator actions: OTP's `start_child`, `restart_child`, `terminate_child`, `delete_child`
//! and `get_childspec`, plus starting from a dynamic supervisor's template. These are requests from
//! outside; the restart engine in the parent module reacts to exits on its own. An operator
//! restart does not count against the intensity, as in OTP.

use std::time::Instant;

use ractor::{ActorCell, ActorRef};

use super::{SupervisorMsg, SupervisorState};
use crate::error::SupervisorError;
use crate::events::EventKind;
use crate::introspect::ChildState;
use crate::policy::Restart;
use crate::spec::{ChildSpec, TemplateArgs};

impl SupervisorState {
    /// Add a child after the existing ones and start it; it is not added if it fails to start.
    pub(super) async fn start_child(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        spec: ChildSpec,
    ) -> Result<ActorCell, SupervisorError> {
        if self.position(&spec.id).is_some() {
            return Err(SupervisorError::DuplicateChild(spec.id));
        }
        spec.check(self.auto_shutdown)?;
        // Restarting children count: they hold a slot they will take back when their wait ends.
        if let Some(max) = self.max_children
            && self.children.iter().filter(|c| c.is_active()).count() >= max
        {
            return Err(SupervisorError::MaxChildren(max));
        }
        match (spec.start)(myself.get_cell()).await {
            Ok(cell) => {
                self.push_child(spec, cell.clone());
                Ok(cell)
            }
            Err(e) => Err(SupervisorError::ChildStartFailed {
                child: spec.id,
                reason: e.0,
            }),
        }
    }

    /// Build the next child from the template and this start's arguments, and start it;
    /// returns its id and cell.
    pub(super) async fn start_from_template(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        args: TemplateArgs,
    ) -> Result<(String, ActorCell), SupervisorError> {
        let template = self.template.clone().ok_or(SupervisorError::NoTemplate)?;
        // Counted before the start, so a refused attempt still uses up its number and ids
        // are never reused.
        self.template_seq += 1;
        let spec = template(self.template_seq, args)?;
        let id = spec.id.clone();
        let cell = self.start_child(myself, spec).await?;
        if let Some(p) = self.position(&id) {
            self.children[p].dynamic = true;
        }
        Ok((id, cell))
    }

    /// Stop the child if it runs (or cancel its pending restart), then start it. A start that
    /// fails leaves the child `Failed` with the reason, and is not retried.
    pub(super) async fn restart_child(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: &str,
    ) -> Result<ActorCell, SupervisorError> {
        let p = self
            .position(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_string()))?;
        self.stop_child(p).await;
        let start = self.children[p].spec.start.clone();
        let result = start(myself.get_cell()).await;
        if let Ok(cell) = &result {
            self.note_incarnation(cell, id);
        }
        let child = &mut self.children[p];
        match result {
            Ok(cell) => {
                child.cell = Some(cell.clone());
                child.state = ChildState::Running;
                child.restarts += 1;
                // The operator chose this start: it begins a new backoff streak.
                child.streak = 0;
                child.started_at = Instant::now();
                let restart_count = child.restarts;
                self.emit(EventKind::ChildRestarted {
                    child: id.to_string(),
                    restart_count,
                    operator: true,
                });
                Ok(cell)
            }
            Err(e) => {
                child.state = ChildState::Failed;
                child.last_failure = Some(format!("start failed: {e}"));
                self.emit(EventKind::RestartFailed {
                    child: id.to_string(),
                    reason: e.0.clone(),
                });
                Err(SupervisorError::ChildStartFailed {
                    child: id.to_string(),
                    reason: e.0,
                })
            }
        }
    }

    /// Stop the child (or cancel its pending restart) and keep its spec as `Stopped`;
    /// a temporary child is removed instead, as OTP does.
    pub(super) async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let p = self
            .position(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_string()))?;
        self.stop_child(p).await;
        self.emit(EventKind::ChildTerminated {
            child: id.to_string(),
        });
        if self.children[p].spec.restart == Restart::Temporary {
            self.remove_child(p);
        } else {
            self.children[p].state = ChildState::Stopped;
        }
        Ok(())
    }

    /// A copy of the child's spec (OTP's `get_childspec`); its start function is shared.
    pub(super) fn get_childspec(&self, id: &str) -> Result<ChildSpec, SupervisorError> {
        self.position(id)
            .map(|p| self.children[p].spec.clone())
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_string()))
    }

    /// Remove a stopped or failed child's spec (OTP's `{error, running}` otherwise).
    pub(super) fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let p = self
            .position(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(id.to_string()))?;
        if self.children[p].is_active() {
            return Err(SupervisorError::ChildRunning(id.to_string()));
        }
        self.remove_child(p);
        Ok(())
    }
}

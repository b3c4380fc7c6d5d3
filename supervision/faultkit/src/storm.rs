//! Restart storms: many kills among a set of supervised children, in a seeded random order.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rand::Rng;
use verisim_supervision::SupervisorHandle;

use crate::error::FaultError;
use crate::kill::{Fault, inflict_at, resolve, tree, wait_replaced};
use crate::seed::{SEED_VAR, rng, seed_from_env};
use crate::tree::Tree;
use crate::wait::wait_until_async;

/// A restart storm: `kills` faults, each on a child drawn (seeded) from the targets.
///
/// With [`wait_each`](Self::wait_each) (the default) each kill waits for its child's
/// replacement before the next, so every kill is one restart; without it the kills come as fast
/// as the supervisor answers, and a kill that finds its child not running (still restarting), or
/// still the incarnation the storm already struck (its exit not handled yet), is counted as
/// skipped, so every counted kill is one restart. Either way the storm ends by waiting for every
/// target to run again, as a new incarnation
/// (unless [`settle`](Self::settle) is off: a storm meant to exceed the restart intensity makes
/// the supervisor give up, and then nothing runs again).
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
/// use verisim_faultkit::Storm;
/// use verisim_supervision::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = SupervisorSpec::new("pool", Strategy::OneForOne)
///     .intensity(100, Duration::from_secs(10))
///     .child(ChildSpec::for_actor("a", Idle, ()))
///     .child(ChildSpec::for_actor("b", Idle, ()));
/// let (pool, _join) = SupervisorHandle::start(spec).await?;
/// let report = Storm::new(20).seed(42).run(&pool, &["a", "b"]).await?;
/// assert_eq!(report.kills.values().sum::<u32>(), 20);
/// let tree = report.tree.expect("settled");
/// assert_eq!(tree.total_restarts(), 20);
/// pool.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Storm {
    kills: usize,
    seed: Option<u64>,
    fault: Fault,
    wait_each: bool,
    settle: bool,
    timeout: Duration,
}

/// What a storm did.
#[derive(Clone, Debug)]
pub struct StormReport {
    /// The seed of the storm's choices.
    pub seed: u64,
    /// Faults inflicted, by target path.
    pub kills: BTreeMap<String, u32>,
    /// Kills that found their target not running or already struck (only without `wait_each`).
    pub skipped: u32,
    /// The tree once every target ran again (`None` when the storm did not settle).
    pub tree: Option<Tree>,
}

impl Storm {
    /// A storm of `kills` kills, seeded from `FAULTKIT_SEED` or at random (printed), each
    /// waiting for its child's replacement, settling at the end; 10 s per wait.
    pub fn new(kills: usize) -> Self {
        Self {
            kills,
            seed: None,
            fault: Fault::Kill,
            wait_each: true,
            settle: true,
            timeout: Duration::from_secs(10),
        }
    }

    /// Draws the targets from this seed (printed too).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The fault to inflict (default [`Fault::Kill`]).
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// Whether each kill waits for its child's replacement (default `true`).
    pub fn wait_each(mut self, wait: bool) -> Self {
        self.wait_each = wait;
        self
    }

    /// Whether the storm ends by waiting for every target to run (default `true`).
    pub fn settle(mut self, settle: bool) -> Self {
        self.settle = settle;
        self
    }

    /// The deadline of each wait (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the storm on the children at `targets` (paths below `root`).
    pub async fn run(
        &self,
        root: &SupervisorHandle,
        targets: &[&str],
    ) -> Result<StormReport, FaultError> {
        let seed = match self.seed {
            Some(s) => {
                eprintln!("storm seed {s}");
                s
            }
            None => seed_from_env(SEED_VAR),
        };
        let mut report = StormReport {
            seed,
            kills: BTreeMap::new(),
            skipped: 0,
            tree: None,
        };
        if targets.is_empty() {
            return Ok(report);
        }
        let mut rng = rng(seed);
        // Incarnations already struck: without waiting, the supervisor may still report a
        // killed child as running (its exit not handled yet), and a second kill of the same
        // incarnation would be counted but cause no restart.
        let mut struck = HashSet::new();
        for _ in 0..self.kills {
            let target = targets[rng.random_range(0..targets.len())];
            let current = resolve(root, target).await?.actor_id;
            if current.as_ref().is_some_and(|id| struck.contains(id)) {
                if self.wait_each {
                    return Err(FaultError::NotRunning(target.to_string()));
                }
                report.skipped += 1;
                continue;
            }
            match inflict_at(root, target, &self.fault).await {
                Ok(old) => {
                    struck.insert(old.clone());
                    *report.kills.entry(target.to_string()).or_default() += 1;
                    if self.wait_each {
                        wait_replaced(root, target, &old, self.timeout).await?;
                    }
                }
                Err(FaultError::NotRunning(_)) if !self.wait_each => report.skipped += 1,
                Err(e) => return Err(e),
            }
        }
        if self.settle {
            let what = format!("every target of the storm (seed {seed}) to run again");
            // Running, and not as an incarnation the storm struck (the supervisor may not have
            // handled the last kills yet).
            let struck = &struck;
            let t = wait_until_async(&what, self.timeout, move || async move {
                let t = tree(root).await.ok()?;
                targets
                    .iter()
                    .all(|p| {
                        t.state(p) == Some(verisim_supervision::ChildState::Running)
                            && t.actor_id(p).is_some_and(|id| !struck.contains(id))
                    })
                    .then_some(t)
            })
            .await?;
            report.tree = Some(t);
        }
        Ok(report)
    }
}

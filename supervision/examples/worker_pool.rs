//! A pool of workers under `one_for_one`: four identical workers answer requests; one is
//! killed, the supervisor starts a new one in its place, and the pool answers again. Only the
//! killed worker is replaced.
//!
//! Run: `cargo run -p verisim-supervision --example worker_pool`

use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use verisim_supervision::{ChildSpec, ChildState, Strategy, SupervisorHandle, SupervisorSpec};

type Error = Box<dyn std::error::Error + Send + Sync>;

const WORKERS: usize = 4;

/// A worker: squares numbers.
#[derive(Clone)]
struct Squarer;

enum SquarerMsg {
    Square(u64, RpcReplyPort<u64>),
}

impl ractor::Message for SquarerMsg {}

impl Actor for Squarer {
    type Msg = SquarerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SquarerMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<SquarerMsg>,
        msg: SquarerMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SquarerMsg::Square(n, reply) => {
                let _ = reply.send(n * n);
            }
        }
        Ok(())
    }
}

/// Ask one worker of the pool.
async fn square(worker: ActorCell, n: u64) -> Result<u64, Error> {
    let worker: ActorRef<SquarerMsg> = worker.into();
    match worker
        .call(|r| SquarerMsg::Square(n, r), Some(Duration::from_secs(1)))
        .await?
    {
        CallResult::Success(v) => Ok(v),
        _ => Err(format!("worker gave no answer for {n}").into()),
    }
}

/// Build the pool, use it, kill a worker, check it was replaced, use the pool again.
pub async fn run() -> Result<(), Error> {
    let mut spec =
        SupervisorSpec::new("pool", Strategy::OneForOne).intensity(5, Duration::from_secs(10));
    for i in 0..WORKERS {
        spec = spec.child(ChildSpec::for_actor(format!("worker-{i}"), Squarer, ()));
    }
    let (pool, join) = SupervisorHandle::start(spec).await?;
    let pool = pool.with_timeout(Duration::from_secs(2));

    // Round-robin over the running workers.
    let cells = |children: Vec<verisim_supervision::ChildInfo>| -> Vec<ActorCell> {
        children.into_iter().filter_map(|c| c.cell).collect()
    };
    let workers = cells(pool.which_children().await?);
    for n in 0..8u64 {
        assert_eq!(
            square(workers[n as usize % WORKERS].clone(), n).await?,
            n * n
        );
    }

    let before = pool.child("worker-2").await?;
    before
        .cell
        .as_ref()
        .ok_or("worker-2 is not running")?
        .kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let c = pool.child("worker-2").await?;
        if c.state == ChildState::Running && c.restart_count == 1 {
            break c;
        }
        if Instant::now() > deadline {
            return Err("worker-2 was not restarted in time".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_ne!(after.actor_id, before.actor_id, "a new incarnation");
    let children = pool.which_children().await?;
    let restarted: Vec<&str> = children
        .iter()
        .filter(|c| c.restart_count > 0)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        restarted,
        ["worker-2"],
        "one_for_one: only the killed worker"
    );

    let workers = cells(children);
    assert_eq!(workers.len(), WORKERS);
    for n in 0..8u64 {
        assert_eq!(
            square(workers[n as usize % WORKERS].clone(), n).await?,
            n * n
        );
    }
    println!(
        "worker-2 was {:?}, now {:?}; the pool answers again",
        before.actor_id, after.actor_id
    );
    pool.stop().await;
    join.await?;
    Ok(())
}

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Error> {
    run().await
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_runs_to_completion() {
        super::run().await.expect("the worker_pool example");
    }
}

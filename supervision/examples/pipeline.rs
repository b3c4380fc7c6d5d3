//! A `rest_for_one` pipeline: `source` → `parser` → `sink`, started in that order. Each stage
//! depends on the ones before it, so when `parser` dies the supervisor stops `sink`, then starts
//! `parser` and `sink` again, in order; `source` keeps running untouched.
//!
//! Run: `cargo run -p verisim-supervision --example pipeline`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use verisim_supervision::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every stage start, in order.
type Starts = Arc<Mutex<Vec<String>>>;

/// One stage of the pipeline; it records its start.
#[derive(Clone)]
struct Stage;

/// A stage takes no messages in this example.
enum StageMsg {}

impl ractor::Message for StageMsg {}

impl Actor for Stage {
    type Msg = StageMsg;
    type State = ();
    type Arguments = (String, Starts);

    async fn pre_start(
        &self,
        _: ActorRef<StageMsg>,
        (name, starts): (String, Starts),
    ) -> Result<(), ActorProcessingErr> {
        starts.lock().map_err(|e| e.to_string())?.push(name);
        Ok(())
    }
}

fn stage(name: &str, starts: &Starts) -> ChildSpec {
    ChildSpec::for_actor(name, Stage, (name.to_string(), starts.clone()))
}

fn starts_of(starts: &Starts) -> Vec<String> {
    starts.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Start the pipeline, kill the middle stage, check what was restarted.
pub async fn run() -> Result<(), Error> {
    let starts = Starts::default();
    let spec = SupervisorSpec::new("pipeline", Strategy::RestForOne)
        .intensity(3, Duration::from_secs(10))
        .child(stage("source", &starts))
        .child(stage("parser", &starts))
        .child(stage("sink", &starts));
    let (pipeline, join) = SupervisorHandle::start(spec).await?;
    let pipeline = pipeline.with_timeout(Duration::from_secs(2));
    assert_eq!(starts_of(&starts), ["source", "parser", "sink"]);
    let source_before = pipeline.child("source").await?.actor_id;

    let parser = pipeline
        .child("parser")
        .await?
        .cell
        .ok_or("parser not running")?;
    parser.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while starts_of(&starts).len() < 5 {
        if Instant::now() > deadline {
            return Err(format!("no restart in time: {:?}", starts_of(&starts)).into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        starts_of(&starts)[3..],
        ["parser", "sink"],
        "the failed stage and the ones after it, in order"
    );
    let children = pipeline.which_children().await?;
    let counts: Vec<(&str, u64)> = children
        .iter()
        .map(|c| (c.id.as_str(), c.restart_count))
        .collect();
    assert_eq!(counts, [("source", 0), ("parser", 1), ("sink", 1)]);
    assert_eq!(pipeline.child("source").await?.actor_id, source_before);
    println!(
        "restarted after parser died: {:?}",
        &starts_of(&starts)[3..]
    );
    pipeline.stop().await;
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
        super::run().await.expect("the pipeline example");
    }
}

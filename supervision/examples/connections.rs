//! A dynamic supervisor of connections, as Elixir's `DynamicSupervisor`: no children at first;
//! one connection actor per peer, started at run time from a template that takes the peer's
//! address; at most three at once; temporary, so a connection that closes leaves the supervisor
//! and frees its slot.
//!
//! Run: `cargo run -p verisim-supervision --example connections`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use verisim_supervision::{
    ChildSpec, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One connection to a peer (here it only remembers the address).
#[derive(Clone)]
struct Connection;

/// What a connection is told.
enum ConnectionMsg {
    /// The peer hung up: stop normally.
    Closed,
}

impl ractor::Message for ConnectionMsg {}

impl Actor for Connection {
    type Msg = ConnectionMsg;
    type State = SocketAddr;
    type Arguments = SocketAddr;

    async fn pre_start(
        &self,
        _: ActorRef<ConnectionMsg>,
        peer: SocketAddr,
    ) -> Result<SocketAddr, ActorProcessingErr> {
        Ok(peer)
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnectionMsg>,
        msg: ConnectionMsg,
        _peer: &mut SocketAddr,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnectionMsg::Closed => myself.stop(None),
        }
        Ok(())
    }
}

/// Open connections, hit the maximum, close one, open another.
pub async fn run() -> Result<(), Error> {
    let spec = SupervisorSpec::new("connections", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .max_children(3)
        .template_with(|n, peer: SocketAddr| {
            ChildSpec::for_actor(format!("conn-{n}-{peer}"), Connection, peer)
                .restart(Restart::Temporary)
        });
    let (conns, join) = SupervisorHandle::start(spec).await?;
    let conns = conns.with_timeout(Duration::from_secs(2));
    assert_eq!(conns.count_children().await?.specs, 0);

    let peers: Vec<SocketAddr> = (1..=4)
        .map(|i| SocketAddr::from(([10, 0, 0, i], 7000)))
        .collect();
    let mut ids = Vec::new();
    for peer in &peers[..3] {
        ids.push(conns.start_from_template_with(*peer).await?.0);
    }
    assert_eq!(ids[0], "conn-1-10.0.0.1:7000");
    match conns.start_from_template_with(peers[3]).await {
        Err(SupervisorError::MaxChildren(3)) => {}
        other => return Err(format!("expected MaxChildren(3), got {other:?}").into()),
    }

    // The second peer hangs up: its connection stops normally and leaves the supervisor.
    let second: ActorRef<ConnectionMsg> = conns
        .child(&ids[1])
        .await?
        .cell
        .ok_or("conn-2 is not running")?
        .into();
    second.cast(ConnectionMsg::Closed)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while conns.count_children().await?.specs != 2 {
        if Instant::now() > deadline {
            return Err("the closed connection did not leave in time".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (id, _) = conns.start_from_template_with(peers[3]).await?;
    assert_eq!(
        id, "conn-5-10.0.0.4:7000",
        "the refused attempt used up number 4"
    );
    // An operator can close one too; temporary children are removed, not kept as stopped.
    conns.terminate_child(&ids[0]).await?;
    let counts = conns.count_children().await?;
    assert_eq!((counts.specs, counts.active), (2, 2));
    println!(
        "open connections: {:?}",
        conns
            .which_children()
            .await?
            .iter()
            .map(|c| &c.id)
            .collect::<Vec<_>>()
    );
    conns.stop().await;
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
        super::run().await.expect("the connections example");
    }
}

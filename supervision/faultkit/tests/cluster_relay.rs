//! Two ractor_cluster nodes in one test process, linked through a frame-mode relay: actor
//! messages between them are dropped (seeded), delayed, and cut off, and the link comes back
//! after healing.
//!
//! Node `a` dials the relay, which forwards to node `b`. A `sink` actor joins a process group;
//! the nodes exchange the group's membership, so a remote proxy of the sink (an actor id that
//! is not local) appears in the group, and a cast to it crosses the link, through the relay.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};
use verisim_faultkit::{FrameKind, Mode, Relay, seed_from_env, wait_until_async};

const WAIT: Duration = Duration::from_secs(20);
const COOKIE: &str = "faultkit-test-cookie";

/// Counts the numbers it is cast.
struct Sink;

impl Actor for Sink {
    type Msg = u64;
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        count: Arc<AtomicU64>,
    ) -> Result<Arc<AtomicU64>, ActorProcessingErr> {
        Ok(count)
    }

    async fn handle(
        &self,
        _: ActorRef<u64>,
        _: u64,
        count: &mut Arc<AtomicU64>,
    ) -> Result<(), ActorProcessingErr> {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

async fn node(name: &str) -> (ActorRef<NodeServerMessage>, u16) {
    let port = free_port();
    let server = NodeServer::new(
        port,
        COOKIE.to_string(),
        name.to_string(),
        "localhost".to_string(),
        None,
        None,
    )
    .with_listen_addr(Ipv4Addr::LOCALHOST.into());
    let (r, _) = Actor::spawn(None, server, ()).await.unwrap();
    (r, port)
}

async fn sessions(server: &ActorRef<NodeServerMessage>) -> usize {
    match server
        .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(1)))
        .await
    {
        Ok(CallResult::Success(s)) => s.len(),
        _ => 0,
    }
}

/// The sink's remote proxy in the group: a member whose id is not local.
async fn remote_sink(group: &str) -> ActorRef<u64> {
    let group = group.to_string();
    let cell: ActorCell = wait_until_async("a remote proxy of the sink", WAIT, || {
        let group = group.clone();
        async move {
            ractor::pg::get_members(&group)
                .into_iter()
                .find(|c| !c.get_id().is_local())
        }
    })
    .await
    .unwrap();
    cell.into()
}

async fn wait_count(count: &AtomicU64, n: u64, what: &str) {
    wait_until_async(what, WAIT, move || async move {
        (count.load(Ordering::SeqCst) >= n).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_between_two_nodes_are_dropped_delayed_and_cut() {
    let seed = seed_from_env("FAULTKIT_SEED");
    let group = format!("faultkit.sink.{seed}");
    let (a, _) = node("a").await;
    let (b, b_port) = node("b").await;
    let relay = Relay::builder(SocketAddr::from((Ipv4Addr::LOCALHOST, b_port)))
        .mode(Mode::RactorCluster)
        .seed(seed)
        .start()
        .unwrap();

    let count = Arc::new(AtomicU64::new(0));
    let (sink, _) = Actor::spawn(None, Sink, count.clone()).await.unwrap();
    ractor::pg::join(group.clone(), vec![sink.get_cell()]);

    ractor_cluster::client_connect(&a, relay.addr())
        .await
        .unwrap();
    let remote = remote_sink(&group).await;
    remote.cast(0).unwrap();
    wait_count(&count, 1, "a cast across the link").await;
    assert!(
        relay
            .stats()
            .forwarded
            .get(&FrameKind::Cast)
            .copied()
            .unwrap_or(0)
            >= 1
    );

    // Half the actor messages dropped: some arrive, the rest are counted as dropped.
    relay.drop_messages(0.5).unwrap();
    let before = count.load(Ordering::SeqCst);
    let dropped_before = relay.stats().messages_dropped();
    for i in 0..200 {
        remote.cast(i).unwrap();
    }
    let (counted, relayed) = (&*count, &relay);
    wait_until_async(
        "every cast delivered or dropped",
        WAIT,
        move || async move {
            let arrived = counted.load(Ordering::SeqCst) - before;
            let dropped = relayed.stats().messages_dropped() - dropped_before;
            (arrived + dropped == 200).then_some((arrived, dropped))
        },
    )
    .await
    .map(|(arrived, dropped)| {
        assert!(
            arrived > 0 && dropped > 0,
            "seed {seed}: {arrived} arrived, {dropped} dropped"
        );
    })
    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    relay.stop_dropping();

    // A delay: a cast takes at least that long.
    let delay = Duration::from_millis(200);
    relay.set_delay(delay);
    let before = count.load(Ordering::SeqCst);
    let t = Instant::now();
    remote.cast(7).unwrap();
    wait_count(&count, before + 1, "a delayed cast").await;
    assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    relay.set_delay(Duration::ZERO);

    // Cut: the session ends on both sides.
    relay.cut();
    let (a_ref, b_ref) = (&a, &b);
    wait_until_async("both sessions to end", WAIT, move || async move {
        (sessions(a_ref).await == 0 && sessions(b_ref).await == 0).then_some(())
    })
    .await
    .unwrap();

    // Healed: `a` dials again (ractor_cluster does not redial by itself) and casts arrive.
    relay.heal();
    ractor_cluster::client_connect(&a, relay.addr())
        .await
        .unwrap();
    let before = count.load(Ordering::SeqCst);
    let group_ref = &group;
    wait_until_async("a cast after healing", WAIT, move || async move {
        let remote = ractor::pg::get_members(group_ref)
            .into_iter()
            .find(|c| !c.get_id().is_local())?;
        let _ = ActorRef::<u64>::from(remote).cast(9);
        (counted.load(Ordering::SeqCst) > before).then_some(())
    })
    .await
    .unwrap();

    a.stop(None);
    b.stop(None);
    sink.stop(None);
}

//! The attacker who holds the cluster cookie (docs/security.md, "Node identities"): a process that
//! joins the ractor_cluster mesh and sends Raft messages and forwarded proposals claiming to be a
//! member. With node identities every such message is refused and counted; without them (the
//! control run) the same forged message moves the cluster's term, which shows the attack is real.

mod support;

use std::time::Duration;

use support::{Cluster, Options, wait_for};
use verisim::consensus::endpoint::{EndpointMsg, GROUP, SCOPE, kind};
use verisim_cluster::{Authority, ClusterConfig, CookieSource, Keyring, NodeIdentity, Sealed};
use verisim_raft::{Message, MessageBody};
use verisim_supervision::SupervisorHandle;

const COOKIE: &str = "cookie-of-the-test-cluster";

/// A ractor_cluster node named `rogue` in this process, holding the cookie, connected to n1; and
/// n1's consensus endpoint as the mesh shows it.
struct Rogue {
    rt: tokio::runtime::Runtime,
    tree: Option<SupervisorHandle>,
    endpoint: ractor::ActorRef<EndpointMsg>,
}

impl Rogue {
    fn join(c: &Cluster) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = ClusterConfig::new(
            "rogue",
            "127.0.0.1:0".parse().expect("addr"),
            CookieSource::Value(COOKIE.into()),
        );
        config.seeds = vec![c.node(1).cluster_addr.to_string()];
        let (tree, endpoint) = rt.block_on(async {
            let (spec, handle) = verisim_cluster::cluster_subtree(config).expect("cluster layer");
            let (tree, _join) = SupervisorHandle::start(spec).await.expect("rogue tree");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(e) = handle
                    .discovery()
                    .actor_on::<EndpointMsg>(SCOPE, GROUP, "n1")
                {
                    break (tree, e);
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the rogue never saw n1's consensus endpoint"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self {
            rt,
            tree: Some(tree),
            endpoint,
        }
    }

    /// Casts a Raft message claiming to come from `from`, sealed with `keyring`.
    fn send_raft(&self, keyring: &Keyring, msg: &Message) {
        let wire = Sealed::seal(kind::RAFT, msg, keyring, msg.to).expect("seal");
        self.endpoint
            .cast(EndpointMsg::Raft(wire))
            .expect("cast to n1's endpoint");
    }

    /// Forwards a proposal to n1 as `keyring`'s node; whether n1 answered within two seconds.
    fn propose(&self, keyring: &Keyring, command: Vec<u8>) -> bool {
        let wire = Sealed::seal(kind::PROPOSE, &command, keyring, 1).expect("seal");
        let endpoint = self.endpoint.clone();
        self.rt.block_on(async move {
            matches!(
                endpoint
                    .call(
                        |r| EndpointMsg::Propose(wire, r),
                        Some(Duration::from_secs(2))
                    )
                    .await,
                Ok(ractor::rpc::CallResult::Success(_))
            )
        })
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        if let Some(tree) = self.tree.take() {
            self.rt.block_on(tree.stop());
        }
    }
}

fn term(c: &Cluster, id: u64) -> u64 {
    c.node(id)
        .consensus()
        .and_then(|s| s["term"].as_u64())
        .expect("n1's term")
}

/// A heartbeat answer from `from` to n1 in a term far ahead: accepted, it makes n1 adopt that term
/// (and step down if it leads).
fn term_bump(from: u64, term: u64) -> Message {
    Message {
        from,
        to: 1,
        term,
        body: MessageBody::HeartbeatResponse { read_round: 0 },
    }
}

fn refused_total(c: &Cluster, id: u64) -> u64 {
    let metrics = c.node(id).get("/metrics").expect("metrics");
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    text.lines()
        .filter(|l| l.starts_with("verisim_cluster_messages_refused_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_cookie_holder_cannot_speak_as_a_member() {
    let c = Cluster::start(Options::default());
    let rogue = Rogue::join(&c);
    // Honest traffic is never refused: every node has counted nothing so far.
    for id in 1..=3 {
        assert_eq!(refused_total(&c, id), 0, "n{id} refused an honest message");
    }
    let before = term(&c, 1);
    let far = before + 1_000;

    // 1. No identity at all: an unsealed message claiming to be n2.
    rogue.send_raft(&Keyring::open(2), &term_bump(2, far));
    // 2. An identity for "n2" from the attacker's own authority.
    let own = Keyring::with_identity(Authority::generate().issue(2)).expect("keyring");
    rogue.send_raft(&own, &term_bump(2, far));
    // 3. n3's real identity (stolen from n3's disk), claiming to be n2.
    let n3 = NodeIdentity::read(&verisim::cli::identity::identity_path(c.dir.path(), 3))
        .expect("n3's identity");
    let stolen = Keyring::with_identity(n3).expect("keyring");
    rogue.send_raft(&stolen, &term_bump(2, far));
    // 4. n3's identity, honest about the sender but not about the Raft message's `from`.
    let mut as_n3 = term_bump(2, far);
    as_n3.to = 1;
    let wire = Sealed::seal(kind::RAFT, &as_n3, &stolen, 1).expect("seal");
    rogue
        .endpoint
        .cast(EndpointMsg::Raft(wire))
        .expect("cast to n1's endpoint");
    // 5. A forwarded proposal without an identity of this cluster: not answered.
    assert!(
        !rogue.propose(&own, b"garbage".to_vec()),
        "n1 answered a proposal from outside the cluster's identities"
    );

    wait_for(
        "n1 to count the five refused messages",
        Duration::from_secs(10),
        || (refused_total(&c, 1) >= 5).then_some(()),
    );
    let after = term(&c, 1);
    assert!(
        after < far,
        "a forged message moved n1's term from {before} to {after}"
    );
    // The cluster still serves.
    c.put("after-the-attack", "v");
    assert_eq!(c.get("after-the-attack").as_deref(), Some("v"));
}

/// The control: the same forged message against a cluster without identities moves n1's term. It
/// shows the attack above is the real one, and why production clusters need identities.
#[test]
fn without_identities_a_cookie_holder_can_move_a_members_term() {
    let c = Cluster::start(Options {
        identities: false,
        ..Options::default()
    });
    let rogue = Rogue::join(&c);
    let far = term(&c, 1) + 1_000;
    rogue.send_raft(&Keyring::open(2), &term_bump(2, far));
    wait_for(
        "n1 to adopt the forged term",
        Duration::from_secs(10),
        || (term(&c, 1) >= far).then_some(()),
    );
}

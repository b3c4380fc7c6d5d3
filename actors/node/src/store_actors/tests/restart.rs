//! A killed store actor is restarted by its supervisor and still holds every item imported before.

use super::super::{KnnQuery, MODALITIES, actor_name};
use super::{Node, T, eventually, id, inputs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_store_actor_is_restarted_and_keeps_its_items() {
    let node = Node::start().await;
    let d = &node.dir;
    let mut imported = Vec::new();
    for i in 0..20u8 {
        for input in inputs(&format!("e{i}"), f32::from(i)) {
            let item = d.prepare_local(&input, T).await.unwrap();
            let fence = crate::store_actors::Fence {
                index: 1,
                version: 1,
            };
            d.import("n1", &item, fence, T).await.unwrap();
            imported.push(item);
        }
    }
    for kind in MODALITIES {
        let old = d.local(kind).unwrap().actor;
        old.kill();
        // Restarted: a new incarnation under the same name.
        let new = eventually(&format!("{kind:?} store restarted"), T, || {
            ractor::registry::where_is(actor_name(kind)).filter(|c| c.get_id() != old.get_id())
        })
        .await;
        let store = d.local(kind).unwrap();
        assert_eq!(store.actor.get_id(), new.get_id());
        for item in imported.iter().filter(|i| i.modality == kind) {
            assert_eq!(
                store.export(&item.id, T).await.unwrap().as_ref(),
                Some(item)
            );
        }
        let child = node.tree.child(kind.name()).await.unwrap();
        assert_eq!(child.restart_count, 1, "{kind:?}");
        assert_eq!(
            d.actors_of(kind).len(),
            1,
            "{kind:?} store rejoined its group"
        );
    }
    // The vector index was rebuilt from fjall: search finds what was imported.
    let q = KnnQuery {
        collection: "default".into(),
        vector: vec![7.0, 1.0, 0.0, 0.0],
        k: 1,
        exact: false,
        ef: None,
        filter: None,
    };
    let hits = d.knn_on("n1", &q, T).await.unwrap();
    assert_eq!(hits[0].id, id("e7"));
    // The other stores kept running (one_for_one): one restart each, all from our kills.
    let graph = node.tree.child("graph").await.unwrap();
    assert_eq!(graph.restart_count, 1);
    node.stop().await;
}

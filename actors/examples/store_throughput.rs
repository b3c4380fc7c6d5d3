//! Hexad registrations per second through one node's store actors: `clients` concurrent callers,
//! each preparing and then importing the four items of a hexad (128-d vector, 10 edges, a 4×4
//! tensor, 3 annotation properties), the store side of a registration. Prints hexads/s and the
//! p50/p99 latency of one hexad's prepare + import.
//!
//! `cargo run --release --example store_throughput -- 4000 64 [dir]`

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use verisim::store_actors::{
    GroupSync, StoreDirectory, StoreSetup, StoresSettings, open_stores_db, stores_subtree,
};
use verisim::stores::graph::OutEdge;
use verisim::stores::semantic::{Annotation, PropertyDef, TypeDef};
use verisim::stores::tensor::{DType, TensorItem};
use verisim::stores::{Datatype, EntityId, GraphInput, HexadInput, Value};
use verisim::supervision::SupervisorHandle;

fn hexad(i: u64) -> Result<HexadInput, Box<dyn std::error::Error>> {
    let id = EntityId::new(format!("h{i}"))?;
    #[allow(clippy::cast_precision_loss)]
    let vector: Vec<f32> = (0..128u64)
        .map(|d| ((i * 31 + d * 7) % 101) as f32 + 1.0)
        .collect();
    let edges = (0..10u64)
        .map(|e| {
            Ok(OutEdge {
                predicate: "links".into(),
                target: EntityId::new(format!("h{}", (i + e + 1) % 100_000))?,
                properties: BTreeMap::new(),
            })
        })
        .collect::<Result<Vec<_>, verisim::stores::StoreError>>()?;
    Ok(HexadInput {
        id,
        graph: Some(GraphInput {
            properties: BTreeMap::from([("n".to_owned(), Value::Int(i64::try_from(i)?))]),
            edges,
        }),
        vectors: BTreeMap::from([("default".to_owned(), vector)]),
        tensor: Some(TensorItem {
            dtype: DType::F32,
            shape: vec![4, 4],
            data: verisim::stores::codec::Bytes(vec![0; 64]),
        }),
        semantic: Some(Annotation {
            types: BTreeSet::from(["ex:Thing".to_owned()]),
            properties: BTreeMap::from([
                ("a".to_owned(), Value::Int(1)),
                ("b".to_owned(), Value::Text("x".into())),
                ("c".to_owned(), Value::Float(0.5)),
            ]),
            proofs: Vec::new(),
        }),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(Ok(4000), |a| a.parse())?;
    let clients: u64 = args.next().map_or(Ok(64), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().to_owned(), Into::into);
    let settings = StoresSettings::default();
    let mut setup: StoreSetup = settings.resolve()?;
    let prop = |datatype| PropertyDef {
        datatype,
        pattern: None,
        min: None,
        max: None,
    };
    setup.types.push(TypeDef {
        iri: "ex:Thing".into(),
        label: "Thing".into(),
        supertypes: BTreeSet::new(),
        required: BTreeSet::new(),
        properties: BTreeMap::from([
            ("a".to_owned(), prop(Datatype::Int)),
            ("b".to_owned(), prop(Datatype::Text)),
            ("c".to_owned(), prop(Datatype::Float)),
        ]),
    });
    let db = open_stores_db(&dir, &settings)?;
    let sync = GroupSync::start(db.clone())?;
    let keyring = Arc::new(verisim_cluster::Keyring::open(1));
    let (tree, _join) = SupervisorHandle::start(stores_subtree(
        db,
        Arc::new(setup),
        sync.clone(),
        keyring.clone(),
    ))
    .await?;
    let stores = StoreDirectory::local_only("n1", keyring);
    let t = Duration::from_secs(30);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let stores = stores.clone();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut i = c;
            while i < n {
                let t0 = Instant::now();
                let mut items = Vec::new();
                for input in hexad(i).map_err(|e| e.to_string())?.into_items() {
                    items.push(
                        stores
                            .prepare_local(&input, t)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                // The four imports at once, on four actors: one group fsync covers them.
                let mut imports = tokio::task::JoinSet::new();
                for item in items {
                    let stores = stores.clone();
                    // Each entity written once: any fence admits it.
                    let fence = verisim::store_actors::Fence {
                        index: 1,
                        version: 1,
                    };
                    imports.spawn(async move { stores.import("n1", &item, fence, t).await });
                }
                while let Some(r) = imports.join_next().await {
                    r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                }
                lat.push(t0.elapsed());
                i += clients;
            }
            Ok::<_, String>(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = tasks.join_next().await {
        lat.extend(r??);
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: usize| lat.get(lat.len() * p / 100).copied().unwrap_or_default();
    #[allow(clippy::cast_precision_loss)]
    let rate = lat.len() as f64 / secs;
    let syncs = sync
        .stats()
        .syncs
        .load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{} hexads, {clients} clients: {rate:.0} hexads/s, p50 {:?}, p99 {:?}, {syncs} fsyncs",
        lat.len(),
        pct(50),
        pct(99)
    );
    tree.stop().await;
    Ok(())
}

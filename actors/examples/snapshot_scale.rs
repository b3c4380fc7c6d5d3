//! How long a registry of N entities takes to snapshot, how large the file is, and how long a node
//! takes to load it back (the work a joining node does after downloading it).
//!
//! `cargo run --release --example snapshot_scale -- 1000000`

use std::collections::BTreeMap;
use std::time::Instant;

use verisim::registry::{
    ClientId, Command, ContentHash, EntityId, ItemMeta, MODALITIES, NodeName, Origin, Outcome,
    Proposal, PublicKey, RegistryConfig, RegistryState, RequestId, WindowId,
};
use verisim::snapshot::{SnapshotDir, read_snapshot};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |a| a.parse())?;
    let mut state = RegistryState::new(RegistryConfig::default());
    let client = ClientId::new("bench")?;
    let window = WindowId::new("w1")?;
    let setup = [
        Command::RegisterClient {
            client: client.clone(),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: 23 * 3600 * 1000,
            client_dh: PublicKey([9; 32]),
        },
    ];
    for (i, command) in setup.into_iter().enumerate() {
        if let Outcome::Refused(r) = state.apply(i as u64 + 1, &Proposal { at_ms: 1, command }) {
            return Err(format!("setup refused: {r}").into());
        }
    }
    let placement = vec![
        NodeName::new("n1")?,
        NodeName::new("n2")?,
        NodeName::new("n3")?,
    ];
    let started = Instant::now();
    for i in 0..n {
        let items: BTreeMap<_, _> = MODALITIES
            .iter()
            .map(|&m| {
                let digest = blake3::Hasher::new()
                    .update(&i.to_be_bytes())
                    .update(&[m as u8])
                    .finalize();
                let hash = ContentHash(*digest.as_bytes());
                (m, ItemMeta { hash, size: 512 })
            })
            .collect();
        let command = Command::PutEntity {
            origin: Origin {
                client: client.clone(),
                window: window.clone(),
                request: RequestId::new(format!("r{i}"))?,
                fingerprint: ContentHash([0; 32]),
            },
            id: EntityId::new(format!("entity-{i:08}"))?,
            items,
            placement: placement.clone(),
            expected_version: None,
        };
        // One proposal per millisecond of proposal time: the request ids of the retention horizon stay.
        let proposal = Proposal {
            at_ms: 1 + i,
            command,
        };
        if let Outcome::Refused(r) = state.apply(i + 3, &proposal) {
            return Err(format!("entity {i} refused: {r}").into());
        }
    }
    let apply = started.elapsed();

    let dir = tempfile::tempdir()?;
    let (snapshots, _) = SnapshotDir::open(dir.path(), 1)?;
    let started = Instant::now();
    let info = snapshots.write(n + 2, 1, Vec::new(), 0, |w| {
        ciborium::into_writer(&state, w).map_err(std::io::Error::other)
    })?;
    let write = started.elapsed();
    let size = std::fs::metadata(&info.path)?.len();

    let started = Instant::now();
    let (_, body) = read_snapshot(&info.path)?;
    let loaded = RegistryState::from_cbor(&body)?;
    let load = started.elapsed();
    assert_eq!(loaded.entity_count() as u64, n);

    println!("entities            {n}");
    println!(
        "apply               {:.2} s ({:.0} entries/s)",
        apply.as_secs_f64(),
        n as f64 / apply.as_secs_f64()
    );
    println!(
        "snapshot write      {:.2} s (CBOR encode + BLAKE3 + fsync + rename)",
        write.as_secs_f64()
    );
    println!(
        "snapshot size       {:.1} MiB ({:.0} bytes/entity)",
        size as f64 / 1048576.0,
        size as f64 / n as f64
    );
    println!(
        "snapshot load       {:.2} s (read + checksum + decode)",
        load.as_secs_f64()
    );
    Ok(())
}

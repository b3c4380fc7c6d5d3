//! The registry the benchmarks build (`cargo bench --bench snapshot_body`, the `snapshot_scale`
//! example, `verisim-bench join` and `register --preload`), in one place so their numbers describe
//! the same thing. Entity `i` is `entity-<i:08>`, registered by request `r<i>`, with one 512-byte
//! item per modality whose hash is that of `i` and the modality. Feature `test-util`.

use std::collections::BTreeMap;

use crate::{
    ClientId, Command, ContentHash, EntityId, IdError, ItemMeta, MODALITIES, ModalityKind,
    NodeName, Origin, Outcome, Proposal, PublicKey, RegistryConfig, RegistryState, RequestId,
    WindowId,
};

/// The commands that make `client` able to register through `window`: enrolled with a fixed key,
/// the window open for 23 hours of proposal time.
pub fn setup(client: &ClientId, window: &WindowId) -> [Command; 2] {
    [
        Command::EnrollClient {
            client: client.clone(),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: 23 * 3600 * 1000,
            client_dh: PublicKey([9; 32]),
        },
    ]
}

/// Entity `i`'s items: a hash of `i` and the modality, 512 bytes each.
pub fn items(i: u64) -> BTreeMap<ModalityKind, ItemMeta> {
    MODALITIES
        .iter()
        .map(|&m| {
            let digest = blake3::Hasher::new()
                .update(&i.to_be_bytes())
                .update(&[m as u8])
                .finalize();
            let hash = ContentHash(*digest.as_bytes());
            (m, ItemMeta { hash, size: 512 })
        })
        .collect()
}

/// The `PutEntity` of entity `i`, registered by `client` through `window` and placed on what
/// `placement` answers for its id.
///
/// # Errors
/// [`IdError`] only if the id formats above stopped being valid ids.
pub fn put_entity(
    i: u64,
    client: &ClientId,
    window: &WindowId,
    placement: impl FnOnce(&EntityId) -> Vec<NodeName>,
) -> Result<Command, IdError> {
    let id = EntityId::new(format!("entity-{i:08}"))?;
    Ok(Command::PutEntity {
        origin: Origin {
            client: client.clone(),
            window: window.clone(),
            request: RequestId::new(format!("r{i}"))?,
            fingerprint: ContentHash([0; 32]),
        },
        placement: placement(&id),
        id,
        items: items(i),
        expected_version: None,
    })
}

/// The registry of `n` entities the snapshot benchmarks measure: client `bench` enrolled with
/// window `w1`, then entities 0..n placed on `n1`, `n2`, `n3`, one proposal per millisecond of
/// proposal time (every request id stays within the retention horizon).
///
/// # Errors
/// A command the registry refused, named.
pub fn registry(n: u64) -> Result<RegistryState, String> {
    let mut state = RegistryState::new(RegistryConfig::default());
    let name = |e: IdError| e.to_string();
    let (client, window) = (
        ClientId::new("bench").map_err(name)?,
        WindowId::new("w1").map_err(name)?,
    );
    for (i, command) in setup(&client, &window).into_iter().enumerate() {
        if let Outcome::Refused(r) = state.apply(i as u64 + 1, &Proposal { at_ms: 1, command }) {
            return Err(format!("setup refused: {r}"));
        }
    }
    let placement = ["n1", "n2", "n3"]
        .into_iter()
        .map(NodeName::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(name)?;
    for i in 0..n {
        let command = put_entity(i, &client, &window, |_| placement.clone()).map_err(name)?;
        let proposal = Proposal {
            at_ms: 1 + i,
            command,
        };
        if let Outcome::Refused(r) = state.apply(i + 3, &proposal) {
            return Err(format!("entity {i} refused: {r}"));
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_registry_applies_without_refusal_and_holds_its_entities() {
        let state = registry(10).unwrap();
        assert_eq!(state.entity_count(), 10);
        assert_ne!(items(1), items(2));
    }

    /// Each command decoded from the log brings its own copies of the owner and placement names;
    /// the registry keeps one: the names it already held (the enrolled client, the node).
    #[test]
    fn entities_share_their_owner_and_placement_names_with_the_registry() {
        let mut state = RegistryState::new(RegistryConfig::default());
        let (client, window) = (ClientId::new("c").unwrap(), WindowId::new("w").unwrap());
        for (i, command) in setup(&client, &window).into_iter().enumerate() {
            state.apply(i as u64 + 1, &Proposal { at_ms: 1, command });
        }
        let join = Command::SetNode {
            node: NodeName::new("n1").unwrap(),
            info: crate::NodeInfo {
                cluster_addr: "127.0.0.1:1".into(),
                http_addr: "127.0.0.1:2".into(),
            },
        };
        state.apply(
            3,
            &Proposal {
                at_ms: 1,
                command: join,
            },
        );
        for i in 0..2 {
            // Fresh names in every command, as decoding a log entry gives.
            let (client, window) = (ClientId::new("c").unwrap(), WindowId::new("w").unwrap());
            let command = put_entity(i, &client, &window, |_| vec![NodeName::new("n1").unwrap()]);
            state.apply(
                i + 4,
                &Proposal {
                    at_ms: 2 + i,
                    command: command.unwrap(),
                },
            );
        }
        let ptr = |s: &str| s.as_ptr();
        let es: Vec<_> = state.entities().map(|(_, e)| e).collect();
        assert_eq!(ptr(es[0].owner.as_str()), ptr(es[1].owner.as_str()));
        assert_eq!(
            ptr(es[0].placement[0].as_str()),
            ptr(es[1].placement[0].as_str())
        );
        assert_eq!(state.entity_count(), 2);
    }
}

//! Entities through the public API, shared by the proxy tests: a cluster whose nodes load a small
//! semantic schema with a client registered and a window open, test hexads, clients bound to one
//! node, and requests signed by hand (to choose the request id).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::time::Duration;

use verisim_client::auth::{COVERED_HEADERS, CoveredHeaders, IdentityKey, sign_request};
use verisim_client::http::{Client, now_ms};
use verisim_client::wire::{
    ClientId, EdgePayload, EntityId, GraphPayload, RegisterRequest, RequestId, SemanticPayload,
    TensorData, TensorPayload, Value, VectorPayload,
};

use super::{Cluster, Options};

/// The schema every node of the entity tests loads: one type with three typed properties.
pub const SCHEMA: &str = r#"[{"iri": "ex:Thing", "label": "Thing", "supertypes": [], "required": ["ex:name"],
  "properties": {
    "ex:name": {"datatype": "Text", "pattern": null, "min": null, "max": null},
    "ex:count": {"datatype": "Int", "pattern": null, "min": 0, "max": null},
    "ex:score": {"datatype": "Float", "pattern": null, "min": null, "max": null}}}]"#;

/// A client of every running node of `c` (retrying on 503 and unreachable nodes, as users would).
/// With the cluster's admin token, if it has one, for the admin calls.
pub fn client_of(c: &Cluster) -> Client {
    let client = Client::new(&node_urls(c)).expect("client");
    match &c.opts.admin_token {
        Some(t) => client.with_admin_token(t.clone()),
        None => client,
    }
}

/// `http://host:port` of every running node, in id order.
pub fn node_urls(c: &Cluster) -> Vec<String> {
    c.nodes
        .iter()
        .filter_map(|n| n.http.map(|a| format!("http://{a}")))
        .collect()
}

/// A 3-node cluster whose nodes load [`SCHEMA`], with client `alice` registered (identity key from
/// seed `[21; 32]`) and a window open on a client of every node.
pub fn entity_cluster() -> (Cluster, Client, IdentityKey) {
    entity_cluster_with(Options::default(), 21)
}

/// [`entity_cluster`] with other options (their `config` is added after the `[stores]` section
/// naming the schema) and `alice`'s identity key from seed `[identity_seed; 32]`. The schema file
/// lives in the cluster's directory, so restarted nodes read it again.
pub fn entity_cluster_with(opts: Options, identity_seed: u8) -> (Cluster, Client, IdentityKey) {
    let mut config = "[stores]\nschema_file = \"{dir}/schema.json\"\n".to_string();
    if let Some(extra) = &opts.config {
        config.push_str(extra);
    }
    let mut files = opts.files.clone();
    files.push(("schema.json".into(), SCHEMA.into()));
    let c = Cluster::start(Options {
        config: Some(config),
        files,
        ..opts
    });
    let client = client_of(&c);
    let identity = IdentityKey::from_seed(&[identity_seed; 32]);
    let alice = ClientId::new("alice").unwrap();
    client
        .register_client(&alice, &identity.public())
        .expect("register alice");
    client
        .open_window(&identity, &alice, Duration::from_secs(600))
        .expect("open window");
    (c, client, identity)
}

/// The pseudo-random numbers of a hexad's vector and tensor (xorshift, in [-0.5, 0.5)).
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_f32(&mut self) -> f32 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    pub fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next_f32()).collect()
    }
}

/// The benchmark's hexad: a 128-d vector, 10 edges, a 4×4 tensor and 3 annotated properties
/// (`ex:count` is `seed`).
pub fn hexad(id: &str, seed: u64) -> RegisterRequest {
    let targets: Vec<String> = (0..10).map(|i| format!("target-{i}")).collect();
    hexad_with(id, seed, &targets, |noise| {
        TensorPayload::from_typed(vec![4, 4], &TensorData::F32(noise.f32s(16)))
    })
}

/// A hexad with edges (`links`) to `targets`, a 128-d vector, the tensor `tensor` draws from the
/// same noise after the vector, and three annotated properties (`ex:count` is `seed`).
pub fn hexad_with(
    id: &str,
    seed: u64,
    targets: &[String],
    tensor: impl FnOnce(&mut Noise) -> TensorPayload,
) -> RegisterRequest {
    let mut noise = Noise::new(seed);
    let vector = noise.f32s(128);
    let tensor = tensor(&mut noise);
    RegisterRequest {
        id: EntityId::new(id).unwrap(),
        graph: GraphPayload {
            properties: BTreeMap::from([("name".into(), Value::Text(id.into()))]),
            edges: targets
                .iter()
                .map(|t| EdgePayload {
                    predicate: "links".into(),
                    target: EntityId::new(t.clone()).unwrap(),
                    properties: BTreeMap::new(),
                })
                .collect(),
        },
        vector: VectorPayload {
            collection: "default".into(),
            values: vector,
        },
        tensor,
        semantic: SemanticPayload {
            types: ["ex:Thing".to_string()].into(),
            properties: BTreeMap::from([
                ("ex:name".into(), Value::Text(id.into())),
                ("ex:count".into(), Value::Int(seed as i64)),
                ("ex:score".into(), Value::Float(0.25)),
            ]),
            proofs: vec![],
        },
    }
}

/// A client bound to node `id` only, in `template`'s window.
pub fn via(c: &Cluster, id: u64, template: &Client) -> Client {
    let one = Client::new(&[format!("http://{}", c.node(id).http.unwrap())]).unwrap();
    one.set_session(template.session());
    one
}

/// Headers of a request signed now in `client`'s window with the given request id, for
/// `Node::request` (which sends `Content-Type: application/json` with a body, signed here).
pub fn signed_headers(
    client: &Client,
    method: &str,
    path: &str,
    body: &[u8],
    request: &str,
) -> Vec<(&'static str, String)> {
    let covered = CoveredHeaders {
        content_type: (!body.is_empty()).then_some("application/json"),
        if_match: None,
    };
    signed_headers_at(client, method, path, &covered, body, request, now_ms())
        .into_iter()
        .filter(|(k, _)| !COVERED_HEADERS.contains(k))
        .collect()
}

/// Every header of a request signed at `timestamp_ms` in `client`'s window with `covered`: the
/// `X-Verisim-*` ones and the covered ones, as signed.
pub fn signed_headers_at(
    client: &Client,
    method: &str,
    path: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
    request: &str,
    timestamp_ms: u64,
) -> Vec<(&'static str, String)> {
    let s = client.session().expect("session");
    let mut pairs = sign_request(
        &s.key,
        &s.client,
        &s.window,
        method,
        path,
        covered,
        timestamp_ms,
        &RequestId::new(request).unwrap(),
        body,
    )
    .unwrap()
    .to_pairs()
    .to_vec();
    pairs.extend(
        covered
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
    );
    pairs
}

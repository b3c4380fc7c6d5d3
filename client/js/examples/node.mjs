// The wasm SDK from Node (>= 18): enroll a fresh client key, open a trust window, register an
// entity, read it back verified, and run a vector search.
//
//   verisim dev                                   # in another terminal: 3 nodes on 8101..8103
//   client/js/build.sh                            # once: builds client/js/pkg
//   node client/js/examples/node.mjs [dev dir]    # default dev dir: ./verisim-dev
//
// VERISIM_NODES (comma-separated URLs) and VERISIM_ADMIN_TOKEN override what is read from the
// dev directory.
import { readFile } from "node:fs/promises";
import { load } from "../pkg/index.mjs";

const sdk = await load();
const devDir = process.argv[2] ?? "verisim-dev";
const nodes = (process.env.VERISIM_NODES ?? "http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103").split(",");
const adminToken = process.env.VERISIM_ADMIN_TOKEN ?? (await readFile(`${devDir}/admin-token`, "utf8")).trim();

// 1. A client identity: a fresh Ed25519 key (keep key.toHex() secret to reuse it).
const key = sdk.IdentityKey.generate();
const clientId = `node-${Date.now().toString(36)}`;

// 2. An operator enrolls its public key (admin token), then the client opens a one-hour window.
const client = new sdk.Client(nodes, { adminToken });
await client.registerClient(clientId, key.publicKeyHex());
const session = await client.openWindow(key, clientId, 3600_000);
console.log(`window ${session.window} open until ${new Date(session.expires_at_ms).toISOString()}`);

// 3. Register an entity: all four modalities (the dev cluster's collection `default` has 128
//    dimensions; its schema has the type ex:Thing, which needs ex:name).
const id = `${clientId}-doc`;
const seed = Math.random() * 1000; // a vector of its own, so it is its own nearest neighbour
const vector = Array.from({ length: 128 }, (_, i) => Math.sin(seed + i));
const written = await client.register({
  id,
  graph: { properties: { name: { text: "from node" } }, edges: [] },
  vector: { collection: "default", values: vector },
  tensor: { shape: [2, 2], dtype: "f32", data: [1, 2, 3, 4] },
  semantic: { types: ["ex:Thing"], properties: { "ex:name": { text: "from node" } }, proofs: [] },
});
console.log(`registered ${written.id} at version ${written.version}`);

// 4. Read it back: every modality's hash is checked against the registry's (`verified`).
const view = await client.get(id);
for (const m of ["graph", "vector", "tensor", "semantic"]) {
  if (!view[m].verified || view[m].hash !== written.hashes[m]) {
    throw new Error(`${m} is not verified: ${JSON.stringify(view[m])}`);
  }
}
console.log(`read back ${view.id} v${view.version}: all four modalities verified (replica ${view.vector.replica})`);

// 5. A vector search: the entity is its own nearest neighbour.
const { hits } = await client.searchVector({ collection: "default", vector, k: 3 });
console.log("nearest:", hits.map((h) => `${h.id} (${h.distance.toFixed(4)})`).join(", "));
if (hits[0]?.id !== id) throw new Error(`expected ${id} first, got ${JSON.stringify(hits)}`);

// Errors are VerisimError objects with the API's stable codes.
try {
  await client.update(id, { graph: {}, vector: { collection: "default", values: vector }, tensor: { shape: [1], dtype: "f32", data: [0] }, semantic: { types: ["ex:Thing"], properties: { "ex:name": { text: "x" } } } }, 99);
} catch (e) {
  console.log(`an update at the wrong version: ${e.status} ${e.code}`);
}
await client.closeWindow();
console.log("OK");

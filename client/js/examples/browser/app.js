// The wasm SDK in a browser: the same steps as examples/node.mjs. Sets `document.body.dataset.result`
// to "ok" or "error: …" when done (for headless runs).
import { load } from "../../pkg/index.mjs";

const log = document.getElementById("log");
const say = (line) => { log.textContent += `\n${line}`; };

const sdk = await load();
log.textContent = "wasm module loaded.";
document.getElementById("run").disabled = false;

async function run(nodes, clientId, keyHex) {
  const key = sdk.IdentityKey.fromHex(keyHex);
  const client = new sdk.Client(nodes);
  const session = await client.openWindow(key, clientId, 3600_000);
  say(`window ${session.window} open until ${new Date(session.expires_at_ms).toISOString()}`);

  const id = `browser-${Date.now().toString(36)}`;
  const seed = Math.random() * 1000; // a vector of its own, so it is its own nearest neighbour
  const vector = Array.from({ length: 128 }, (_, i) => Math.cos(seed + i));
  const written = await client.register({
    id,
    graph: { properties: { name: { text: "from a browser" } }, edges: [] },
    vector: { collection: "default", values: vector },
    tensor: { shape: [2, 2], dtype: "f32", data: [1, 2, 3, 4] },
    semantic: { types: ["ex:Thing"], properties: { "ex:name": { text: "from a browser" } }, proofs: [] },
  });
  say(`registered ${written.id} at version ${written.version}`);

  const view = await client.get(id);
  for (const m of ["graph", "vector", "tensor", "semantic"]) {
    if (!view[m].verified || view[m].hash !== written.hashes[m]) throw new Error(`${m} not verified`);
  }
  say(`read back ${view.id}: all four modalities verified`);

  const { hits } = await client.searchVector({ collection: "default", vector, k: 3 });
  say(`nearest: ${hits.map((h) => `${h.id} (${h.distance.toFixed(4)})`).join(", ")}`);
  if (hits[0]?.id !== id) throw new Error(`expected ${id} first`);
  await client.closeWindow();
}

async function go(nodes, clientId, keyHex) {
  try {
    await run(nodes, clientId, keyHex);
    say("OK");
    document.body.dataset.result = "ok";
  } catch (e) {
    say(`error: ${e.kind ?? ""} ${e.code ?? ""} ${e.message}`);
    document.body.dataset.result = `error: ${e.message}`;
  }
}

document.getElementById("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const nodes = document.getElementById("nodes").value.split(",").map((s) => s.trim());
  go(nodes, document.getElementById("client").value.trim(), document.getElementById("key").value.trim());
});

// Headless runs: ?nodes=…&client=…&key=… runs at once.
const q = new URLSearchParams(location.search);
if (q.get("key")) go((q.get("nodes") ?? document.getElementById("nodes").value).split(","), q.get("client") ?? "dev", q.get("key"));

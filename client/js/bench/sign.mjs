// Signing throughput of the wasm SDK in Node: signRequest (HMAC-SHA256 over a canonical request,
// scheme v2) with a 4 KiB body (as the native bench `auth/sign_request_4KiB`), and an Ed25519
// signature.
//   node client/js/bench/sign.mjs    (after client/js/build.sh)
// The native numbers for comparison: cargo bench -p verisim-client --bench auth.
import { load } from "../pkg/index.mjs";

const sdk = await load();
const windowKey = "7d2f5e013e2a6d9860749f39afdd75a5970e68449021bf4af0e23e6724b06687";
const body = new Uint8Array(4096).fill(0x78); // 4096 × "x", like the native bench
const input = { windowKey, client: "alice", window: "w-0001", method: "POST", path: "/v1/entities", contentType: "application/json", timestampMs: 1700000000123, requestId: "r-0001", body };

function rate(name, f, seconds = 2) {
  for (let i = 0; i < 200; i++) f(i); // warm up
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) f(n + i);
    n += 100;
  }
  const s = (performance.now() - start) / 1000;
  console.log(`${name}: ${Math.round(n / s)} /s (${((s / n) * 1e6).toFixed(2)} µs each)`);
}

rate("signRequest, 4 KiB body", (i) => sdk.signRequest({ ...input, timestampMs: 1700000000123 + i }));
const key = sdk.IdentityKey.fromSeed(new Uint8Array(32));
const msg = new Uint8Array(256);
rate("IdentityKey.sign (Ed25519), 256 B", () => key.sign(msg));

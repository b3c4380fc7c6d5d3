// The edge verifier (the proxy's request check, verisim_client::verify, built to wasm) under Node,
// on the signing test vectors of the Rust tests: client/js/test/vectors.json, which
// client/src/auth/vectors.rs generates and checks. Each vector, signed correctly, must verify with
// the fingerprint the Rust library computes; each tampered variant must fail with the stable API
// error code a node would answer.
// Run: node --test client/js/test/verifier.test.mjs (after client/js/build.sh); tests/js_sdk.rs runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { load } from "../pkg/index.mjs";

const sdk = await load();
const V = JSON.parse(await readFile(new URL("./vectors.json", import.meta.url), "utf8"));

/** The trust state the vectors were signed in: alice's window w-0001, open until expires_at_ms. */
function trust({ revoked = false, applied = {}, windowClient = V.client } = {}) {
  return {
    windows: {
      [V.window]: { client: windowClient, clientPublicKey: V.window_public, expiresAtMs: V.expires_at_ms },
    },
    clients: { [V.client]: { revoked } },
    applied,
  };
}

/** What a client sent for vector `r`: the five x-verisim-* headers and the covered ones. */
function headersOf(r) {
  const h = {
    "x-verisim-client": V.client,
    "x-verisim-window": V.window,
    "x-verisim-timestamp": String(r.timestamp_ms),
    "x-verisim-request-id": r.request_id,
    "x-verisim-signature": r.signature,
  };
  if (r.content_type !== null) h["content-type"] = r.content_type;
  if (r.if_match !== null) h["if-match"] = r.if_match;
  return h;
}

function input(r, changes = {}) {
  return { method: r.method, path: r.path, headers: headersOf(r), body: r.body, nowMs: r.timestamp_ms, ...changes };
}

const verifier = sdk.Verifier.fromClusterSecretHex(V.cluster_secret, V.skew_ms);

/** Asserts that `fn` throws a VerisimError of kind `auth` with API code `code`. */
function refused(fn, code, what) {
  assert.throws(fn, (e) => e.name === "VerisimError" && e.kind === "auth" && e.code === code, `${what}: expected ${code}`);
}

test("the verifier holds the cluster's key (from the exported secret or the key material)", () => {
  assert.equal(verifier.clusterPublicKeyHex(), V.values.cluster_public);
  assert.equal(sdk.Verifier.fromKeyMaterial(V.cookie).clusterPublicKeyHex(), V.values.cluster_public);
  assert.equal(verifier.skewMs, V.skew_ms);
});

test("every signed vector verifies, with the Rust library's fingerprint", () => {
  assert.equal(V.requests.length, 4);
  for (const r of V.requests) {
    assert.equal(r.signature, V.values[r.name], r.name);
    const v = verifier.verify(trust(), input(r));
    assert.deepEqual(
      v,
      { client: V.client, window: V.window, requestId: r.request_id, timestampMs: r.timestamp_ms, fingerprint: r.fingerprint, retry: false },
      r.name,
    );
    // Headers as Fetch's Headers, as pairs, and with the body as bytes: the same answer.
    assert.deepEqual(verifier.verify(trust(), input(r, { headers: new Headers(headersOf(r)) })), v, r.name);
    assert.deepEqual(verifier.verify(trust(), input(r, { headers: Object.entries(headersOf(r)) })), v, r.name);
    assert.deepEqual(verifier.verify(trust(), input(r, { body: new TextEncoder().encode(r.body) })), v, r.name);
  }
});

test("tampered vectors fail with bad_signature", () => {
  for (const r of V.requests) {
    const h = headersOf(r);
    refused(() => verifier.verify(trust(), input(r, { body: r.body + " " })), "bad_signature", `${r.name}: body`);
    refused(() => verifier.verify(trust(), input(r, { method: r.method === "GET" ? "HEAD" : "GET" })), "bad_signature", `${r.name}: method`);
    refused(() => verifier.verify(trust(), input(r, { path: r.path + "x" })), "bad_signature", `${r.name}: path`);
    const flipped = r.signature.slice(0, -1) + (r.signature.endsWith("0") ? "1" : "0");
    refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "x-verisim-signature": flipped } })), "bad_signature", `${r.name}: signature`);
    refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "if-match": "999" } })), "bad_signature", `${r.name}: If-Match`);
    refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "content-type": "text/plain" } })), "bad_signature", `${r.name}: Content-Type`);
    refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "x-verisim-request-id": "r-9999" } })), "bad_signature", `${r.name}: request id`);
    // Another client's window; a window nobody opened (also one named like an Object property).
    refused(() => verifier.verify(trust({ windowClient: "bob" }), input(r)), "bad_signature", `${r.name}: bob's window`);
    for (const w of ["w-9999", "__proto__", "constructor"]) {
      refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "x-verisim-window": w } })), "bad_signature", `${r.name}: window ${w}`);
    }
  }
  // A dropped If-Match (the vector that signed one).
  const put = V.requests.find((r) => r.if_match === "7");
  const { "if-match": _, ...dropped } = headersOf(put);
  refused(() => verifier.verify(trust(), input(put, { headers: dropped })), "bad_signature", "dropped If-Match");
  // Sent twice: refused as malformed (which copy would the server act on?).
  refused(() => verifier.verify(trust(), input(put, { headers: { ...headersOf(put), "if-match": ["7", "1"] } })), "malformed_auth", "If-Match twice");
});

test("skew, revocation, expiry and replay have their codes", () => {
  const [r] = V.requests;
  for (const nowMs of [r.timestamp_ms + V.skew_ms + 1, r.timestamp_ms - V.skew_ms - 1]) {
    refused(() => verifier.verify(trust(), input(r, { nowMs })), "timestamp_skew", `now ${nowMs}`);
  }
  verifier.verify(trust(), input(r, { nowMs: r.timestamp_ms + V.skew_ms }));
  refused(() => verifier.verify(trust({ revoked: true }), input(r)), "client_revoked", "revoked");
  const expired = { ...trust(), windows: { [V.window]: { ...trust().windows[V.window], expiresAtMs: r.timestamp_ms } } };
  refused(() => verifier.verify(expired, input(r)), "expired_window", "expired");
  // The request id applied before: with this fingerprint a retry, with another a replay.
  const same = { [V.client]: { [r.request_id]: r.fingerprint } };
  assert.equal(verifier.verify(trust({ applied: same }), input(r)).retry, true);
  const other = { [V.client]: { [r.request_id]: V.requests[1].fingerprint } };
  refused(() => verifier.verify(trust({ applied: other }), input(r)), "replayed_request", "replay");
  // Missing, malformed and v1 headers.
  const h = headersOf(r);
  const { "x-verisim-signature": _, ...unsigned } = h;
  refused(() => verifier.verify(trust(), input(r, { headers: unsigned })), "missing_auth", "unsigned");
  refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "x-verisim-timestamp": "+5" } })), "malformed_auth", "timestamp");
  refused(() => verifier.verify(trust(), input(r, { headers: { ...h, "x-verisim-signature": r.signature.slice(3) } })), "unsupported_scheme", "v1");
});

test("a malformed trust state or input is a config error, not a refusal", () => {
  const [r] = V.requests;
  const broken = { ...trust(), windows: { [V.window]: { client: V.client, clientPublicKey: "zz", expiresAtMs: V.expires_at_ms } } };
  assert.throws(() => verifier.verify(broken, input(r)), (e) => e.name === "VerisimError" && e.kind === "config");
  assert.throws(() => verifier.verify(trust(), { ...input(r), headers: 5 }), (e) => e.kind === "config");
  assert.throws(() => sdk.Verifier.fromClusterSecretHex("zz"), (e) => e.kind === "auth" && e.code === "invalid_input");
});

// Type-checks the package's TypeScript definitions (pkg/index.d.ts, pkg/verisim_client.d.ts):
// every export used as the README and examples use it, with explicit annotations, and
// `@ts-expect-error` lines that must fail, so the check proves the definitions are strict.
// Compiled only, never run: `tsc -p client/js/tsconfig.json` (after client/js/build.sh);
// tests/js_sdk.rs runs it.
import { load } from "../pkg/index.mjs";

// The generated classes declare `[Symbol.dispose]()` (explicit resource management), which
// TypeScript's libs know from 5.2 on ("esnext.disposable"); for older ones (Debian's tsc 4.8)
// or other `lib` settings, a consumer declares the symbol as here (or sets `skipLibCheck`).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}
import type {
  Client,
  ClientOptions,
  EntityDeleted,
  EntityView,
  EntityWritten,
  IdentityKey,
  JsonValue,
  ModalityView,
  OpenWindowRequest,
  RawResponse,
  RegisterClientResponse,
  RegisterRequest,
  Session,
  SignedHeaders,
  SignRequestInput,
  TrustState,
  UpdateRequest,
  VectorPayload,
  VectorSearchRequest,
  VectorSearchResponse,
  VerifiedRequest,
  Verifier,
  VerifyInput,
  VerisimError,
} from "../pkg/index.mjs";

// The generated classes declare `[Symbol.dispose]()` (explicit resource management), which
// TypeScript's libs know from 5.2 on ("esnext.disposable"); for older ones (Debian's tsc 4.8)
// or other `lib` settings, a consumer declares the symbol as here (or sets `skipLibCheck`).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

export async function usage(adminToken: string, vector: number[]): Promise<void> {
  const sdk: Awaited<ReturnType<typeof load>> = await load();
  await load(new URL("file:///x.wasm"));
  await load(new Uint8Array(8));
  // (No @ts-expect-error for a bad `source`: lib.dom's WebAssembly.Module is an empty
  // interface, which any non-null value satisfies.)

  // Keys: generated, imported, exported.
  const key: IdentityKey = sdk.IdentityKey.generate();
  const again: IdentityKey = sdk.IdentityKey.fromHex(key.toHex());
  const fromB64: IdentityKey = sdk.IdentityKey.fromBase64(again.toBase64());
  const fromSeed: IdentityKey = sdk.IdentityKey.fromSeed(new Uint8Array(32));
  const pubHex: string = fromB64.publicKeyHex();
  const pubB64: string = fromSeed.publicKeyBase64();
  const sig: Uint8Array = key.sign(new TextEncoder().encode(pubHex + pubB64));
  // @ts-expect-error: fromSeed takes bytes, not hex
  sdk.IdentityKey.fromSeed("00");
  // @ts-expect-error: the constructor is private (generate or import a key)
  new sdk.IdentityKey();

  // The client: options, admin calls, a window.
  const options: ClientOptions = { adminToken, maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100, maxRetryAfterMs: 1000, requestTimeoutMs: 5000 };
  const admin: Client = new sdk.Client(["http://127.0.0.1:8101"], options);
  const client: Client = new sdk.Client(["http://127.0.0.1:8101", "http://127.0.0.1:8102"]);
  // @ts-expect-error: nodes is an array of URLs, not one string
  new sdk.Client("http://127.0.0.1:8101");
  // @ts-expect-error: an unknown option
  new sdk.Client([], { adminTokn: "x" });
  const enrolled: RegisterClientResponse = await admin.registerClient("alice", key.publicKeyHex());
  const index: number = enrolled.index;
  const clusterKey: string = await client.clusterKey();
  const session: Session = await client.openWindow(key, "alice", 3600_000);
  const expires: number = session.expires_at_ms;
  // @ts-expect-error: the ttl is a number of milliseconds
  await client.openWindow(key, "alice", "1h");
  const current: Session | null = client.session();
  client.setSession(current);
  client.setSession(null);
  const urls: string[] = client.nodeUrls();

  // Entities.
  const vec: VectorPayload = { collection: "default", values: vector };
  const req: RegisterRequest = {
    id: "doc-1",
    graph: { properties: { name: { text: "x" } }, edges: [{ predicate: "p", target: "doc-2" }] },
    vector: vec,
    tensor: { shape: [2, 2], dtype: "f32", data: [1, 2, 3, 4] },
    semantic: { types: ["ex:Thing"], properties: { "ex:name": { text: "x" } }, proofs: [] },
  };
  const written: EntityWritten = await client.register(req);
  const hash: string = written.hashes.vector;
  // @ts-expect-error: a register request needs all four modalities
  await client.register({ id: "doc-1", graph: {} });
  const view: EntityView = await client.get("doc-1");
  const drifted: EntityView = await client.get("doc-1", true);
  const modality: ModalityView<VectorPayload> = drifted.vector;
  const verified: boolean = view.vector.verified && modality.data !== null;
  const { id: _id, ...rest } = req;
  const update: UpdateRequest = rest;
  const updated: EntityWritten = await client.update("doc-1", update, written.version);
  // @ts-expect-error: the expected version is a number
  await client.update("doc-1", update, "1");
  // @ts-expect-error: an update carries no id
  await client.update("doc-1", { ...update, id: "doc-1" }, 1);
  const deleted: EntityDeleted = await client.delete("doc-1", updated.version);
  await client.delete("doc-2");
  const search: VectorSearchRequest = { collection: "default", vector, k: 5, exact: true };
  const found: VectorSearchResponse = await client.searchVector(search);
  const nearest: string | undefined = found.hits[0]?.id;
  // @ts-expect-error: k is required
  await client.searchVector({ collection: "default", vector });
  const raw: RawResponse = await client.sendSigned("POST", "/v1/graph/query", JSON.stringify({ q: 1 }), "3");
  await client.sendSigned("GET", "/v1/entities/doc-1");
  const status: number = raw.status;
  const adminRaw: RawResponse = await admin.admin("GET", "/admin/status");
  await admin.admin("POST", "/admin/clients", { client: "bob", public_key: pubHex });
  // @ts-expect-error: a body is a string or bytes
  await client.sendSigned("POST", "/v1/x", { q: 1 });
  await client.closeWindow();

  // Errors: a VerisimError with a kind and the API's code.
  try {
    await client.get("missing");
  } catch (e) {
    const err = e as VerisimError;
    const kind: "api" | "transport" | "no_session" | "auth" | "json" | "config" = err.kind;
    const code: string | undefined = err.code;
    const httpStatus: number | undefined = err.status;
    const message: string = err.message;
    // @ts-expect-error: not a kind
    const bad: VerisimError["kind"] = "network";
    void [kind, code, httpStatus, message, bad];
  }

  // Low level: window keys and signing for one's own transport.
  const seed = new Uint8Array(32);
  const windowPublic: string = sdk.windowPublicKey(seed);
  const windowKey: string = sdk.deriveWindowKey(seed, clusterKey, "w-0001");
  const open: OpenWindowRequest = sdk.openWindowBody(key, clusterKey, "alice", "w-0001", windowPublic, 3600_000, Date.now());
  const input: SignRequestInput = {
    windowKey,
    client: "alice",
    window: "w-0001",
    method: "PUT",
    path: "/v1/entities/a",
    contentType: "application/json",
    ifMatch: "7",
    timestampMs: Date.now(),
    requestId: "r-0001",
    body: '{"v":2}',
  };
  const headers: SignedHeaders = sdk.signRequest(input);
  const signature: string = headers["x-verisim-signature"];
  const bodyHash: string = sdk.bodySha256Hex(new Uint8Array(0));
  // @ts-expect-error: timestampMs is required
  sdk.signRequest({ windowKey, client: "alice", window: "w-0001", method: "GET", path: "/", requestId: "r" });

  // The edge verifier.
  const verifier: Verifier = sdk.Verifier.fromClusterSecretHex("00".repeat(32), 300_000);
  const fromIkm: Verifier = sdk.Verifier.fromKeyMaterial(new TextEncoder().encode("cookie"));
  const skew: number = verifier.skewMs;
  const clusterPublic: string = fromIkm.clusterPublicKeyHex();
  const trust: TrustState = {
    windows: { "w-0001": { client: "alice", clientPublicKey: windowPublic, expiresAtMs: 1_700_003_600_000 } },
    clients: { alice: { revoked: false } },
    applied: { alice: { "r-0000": "ab" } },
  };
  const request: VerifyInput = { method: "PUT", path: "/v1/entities/a", headers: { ...headers }, body: '{"v":2}', nowMs: 1_700_000_000_000 };
  const ok: VerifiedRequest = verifier.verify(trust, request);
  verifier.verify(trust, { method: "GET", path: "/", headers: new Headers() });
  verifier.verify(trust, { method: "GET", path: "/", headers: new Map<string, string>() });
  verifier.verify(trust, { method: "GET", path: "/", headers: [["x-verisim-client", "alice"]] });
  const who: [string, string, string, number, string, boolean] = [ok.client, ok.window, ok.requestId, ok.timestampMs, ok.fingerprint, ok.retry];
  // @ts-expect-error: a window needs its client's public key
  const badTrust: TrustState = { windows: { w: { client: "alice", expiresAtMs: 1 } }, clients: {} };
  // @ts-expect-error: the body is a string or bytes
  verifier.verify(trust, { method: "GET", path: "/", headers: {}, body: 42 });
  // @ts-expect-error: the constructor is private
  new sdk.Verifier();
  // @ts-expect-error: skewMs is read-only
  verifier.skewMs = 1;

  const json: JsonValue = { a: [1, "b", null, true] };
  verifier.free();
  void [sig, index, expires, urls, hash, verified, deleted, nearest, status, adminRaw, open, signature, bodyHash, skew, clusterPublic, who, badTrust, json];
}

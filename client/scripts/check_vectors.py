# Independent re-implementation of docs/api.md's scheme (window opening, window key, request
# signing v2) with Python's `cryptography`. Prints `name value` lines; the Rust test
# `auth::vectors::python_checker_agrees` runs it and compares every line byte for byte.
import hashlib, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes, serialization
raw = serialization.Encoding.Raw; pub = serialization.PublicFormat.Raw
def hkdf(salt, ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)
ident = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
print("identity_public", ident.public_key().public_bytes(raw, pub).hex())
cs = X25519PrivateKey.from_private_bytes(hkdf(None, b"verisim test cookie", b"verisim cluster dh key v1"))
cp = cs.public_key().public_bytes(raw, pub)
print("cluster_public", cp.hex())
ws = X25519PrivateKey.from_private_bytes(bytes(0x20 + i for i in range(32)))
wp = ws.public_key().public_bytes(raw, pub)
print("window_public", wp.hex())
k1 = hkdf(b"w-0001", ws.exchange(X25519PublicKey.from_public_bytes(cp)), b"verisim window key v1")
k2 = hkdf(b"w-0001", cs.exchange(X25519PublicKey.from_public_bytes(wp)), b"verisim window key v1")
assert k1 == k2
print("window_key", k1.hex())
msg = "\n".join(["verisim-open-window-v1", cp.hex(), "alice", "w-0001", wp.hex(), "3600000", "1700000000000"]).encode()
print("open_signature", ident.sign(msg).hex())

# Scheme v2: the covered headers in this order; `name:value` when present, bare `name` when absent.
COVERED = ["content-type", "if-match"]
def sign(method, target, headers, ts, rid, body):
    lines = ["verisim-request-v2", method, target, "alice", "w-0001", str(ts), rid]
    for name in COVERED:
        lines.append(name if name not in headers else name + ":" + headers[name])
    lines.append(hashlib.sha256(body).hexdigest())
    return "v2=" + hmac.new(k1, "\n".join(lines).encode(), hashlib.sha256).hexdigest()

REQUESTS = [
    # name, method, path and query, covered headers, timestamp_ms, request id, body
    ("post", "POST", "/v1/entities", {"content-type": "application/json"}, 1700000000123, "r-0001", b'{"id":"a"}'),
    ("put_if_match", "PUT", "/v1/entities/a", {"content-type": "application/json", "if-match": "7"}, 1700000000456, "r-0002", b'{"v":2}'),
    ("get_query", "GET", "/v1/entities/a?allow_drift=true", {}, 1700000000789, "r-0003", b""),
    ("delete_if_match_empty", "DELETE", "/v1/entities/a", {"if-match": ""}, 1700000001000, "r-0004", b""),
]
print("body_sha256", hashlib.sha256(b'{"id":"a"}').hexdigest())
for name, method, target, headers, ts, rid, body in REQUESTS:
    print("request_" + name, sign(method, target, headers, ts, rid, body))

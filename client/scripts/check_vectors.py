# Independent re-implementation of docs/api.md's scheme with Python's `cryptography`.
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
body = b'{"id":"a"}'
canon = "\n".join(["verisim-request-v1", "POST", "/v1/entities?x=1", "alice", "w-0001", "1700000000123", "r-0001", hashlib.sha256(body).hexdigest()]).encode()
print("request_signature", hmac.new(k1, canon, hashlib.sha256).hexdigest())

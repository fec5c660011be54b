"""Independent reference implementation of the pgcrypt-proxy envelope.

Written against Python's `cryptography` package only (the library the seed
document uses), so that it shares no code with the Go implementation. Used by
gen_vectors.py (to write vectors.json) and check_go_vectors.py (to check
envelopes made by Go).

Envelopes (see cipher/doc.go for the full grammar):
  randomized:    <key id>:<b64 12-byte nonce>:<b64 AES-256-GCM ciphertext||tag>
  deterministic: <key id>:siv:<b64 AES-SIV output (SIV||ciphertext)>
AD None means no associated data (the seed's own format).
"""

import base64
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIV_INFO = b"pgcrypt-proxy aes-siv v1"
KEY_ID_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,32}\Z")


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def unb64(s: str) -> bytes:
    raw = base64.b64decode(s, validate=True)
    if b64(raw) != s:  # reject non-canonical encodings, as Go does
        raise ValueError("non-canonical base64")
    return raw


def siv_key(master: bytes) -> bytes:
    assert len(master) == 32
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=SIV_INFO).derive(master)


def encrypt_randomized(key_id: str, master: bytes, nonce: bytes, pt: bytes, ad: bytes | None) -> str:
    assert KEY_ID_RE.match(key_id) and len(nonce) == 12
    ct = AESGCM(master).encrypt(nonce, pt, ad)
    return f"{key_id}:{b64(nonce)}:{b64(ct)}"


def encrypt_deterministic(key_id: str, master: bytes, pt: bytes, ad: bytes | None) -> str:
    assert KEY_ID_RE.match(key_id)
    # Exactly one AD component, empty when there is none (Tink's convention).
    out = AESSIV(siv_key(master)).encrypt(pt, [ad or b""])
    return f"{key_id}:siv:{b64(out)}"


def decrypt(envelope: str, keys: dict[str, bytes], ad: bytes | None) -> bytes:
    key_id, mid, payload = envelope.split(":")
    if not KEY_ID_RE.match(key_id):
        raise ValueError("bad key id")
    master = keys[key_id]
    raw = unb64(payload)
    if mid == "siv":
        return AESSIV(siv_key(master)).decrypt(raw, [ad or b""])
    nonce = unb64(mid)
    if len(nonce) != 12:
        raise ValueError("bad nonce length")
    return AESGCM(master).decrypt(nonce, raw, ad)


def nonce_of(envelope: str) -> bytes:
    return unb64(envelope.split(":")[1])

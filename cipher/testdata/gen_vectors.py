#!/usr/bin/env python3
"""Writes vectors.json: pgcrypt-proxy envelope test vectors made with Python's
`cryptography` (AESGCM as the seed document uses; AESSIV and HKDF for the
deterministic form), independently of the Go code.

Run from anywhere:  python3 cipher/testdata/gen_vectors.py
The output is fully deterministic (fixed keys and nonces), so re-running it
must leave vectors.json unchanged; the Go tests decrypt every vector,
re-create every one byte for byte (randomized ones with the recorded nonce),
and check the negative cases.
"""

import hashlib
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgcrypt_ref import b64, encrypt_deterministic, encrypt_randomized, siv_key  # noqa: E402


def h(label: str, n: int) -> bytes:
    return hashlib.sha256(label.encode()).digest()[:n]


KEYS = {
    "v1": bytes(range(32)),
    "v2": h("pgcrypt-proxy test key v2", 32),
    "k-2025.06_b": h("pgcrypt-proxy test key k-2025.06_b", 32),
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345": h("pgcrypt-proxy test key 32-char id", 32),
}

ADS = [
    None,  # associated_data: none (the seed's format)
    "public.clients.first_name",
    "public.legacy_notes.body",
    "renamed column \u2713",  # any fixed string, UTF-8
]

PLAINTEXTS = [
    ("empty", b""),
    ("one byte", b"a"),
    ("name", "John Doe".encode()),
    ("unicode", "Jos\u00e9 Garc\u00eda: \u65e5\u672c\u8a9e \U0001F389".encode()),
    ("15 bytes", b"123456789012345"),
    ("16 bytes", b"1234567890123456"),
    ("17 bytes", b"12345678901234567"),
    ("32 bytes", b"0123456789abcdef0123456789ABCDEF"),
    ("separators and padding chars", b"v1:AAAAAAAAAAAAAAAA:AA==:siv:="),
    ("binary, not UTF-8", bytes([0, 255, 254, 0x80, 0xC3, 0x28, 10, 13, 0])),
    ("1000 x A", b"A" * 1000),
    ("medical history 10k", ("Diabetes Type 2, hypertension; \u00e9\u00e8 \U0001F489 " * 250).encode()[:10007]),
]

vectors = []
for key_id in ["v1", "v2", "k-2025.06_b", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"]:
    master = KEYS[key_id]
    for ad in ADS:
        adb = None if ad is None else ad.encode()
        for name, pt in PLAINTEXTS:
            # Keep the file small: long plaintexts only for v1 and two ADs.
            if len(pt) > 100 and (key_id != "v1" or ad not in (None, "public.clients.first_name")):
                continue
            label = f"{key_id}|{ad}|{name}"
            nonce = h("nonce|" + label, 12)
            vectors.append({
                "name": f"randomized {label}",
                "mode": "randomized",
                "key_id": key_id,
                "ad": ad,
                "plaintext_b64": b64(pt),
                "nonce_b64": b64(nonce),
                "envelope": encrypt_randomized(key_id, master, nonce, pt, adb),
            })
            vectors.append({
                "name": f"deterministic {label}",
                "mode": "deterministic",
                "key_id": key_id,
                "ad": ad,
                "plaintext_b64": b64(pt),
                "envelope": encrypt_deterministic(key_id, master, pt, adb),
            })

# The seed's own EncryptedString output, spelled out: v1, no associated data.
seed_nonce = h("seed nonce", 12)
vectors.append({
    "name": "seed EncryptedString format (v1, AD none)",
    "mode": "randomized",
    "key_id": "v1",
    "ad": None,
    "plaintext_b64": b64(b"Diabetes Type 2, hypertension"),
    "nonce_b64": b64(seed_nonce),
    "envelope": encrypt_randomized("v1", KEYS["v1"], seed_nonce, b"Diabetes Type 2, hypertension", None),
})

# Envelope-shaped values that must fail, with the reason.
v1 = KEYS["v1"]
good = encrypt_randomized("v1", v1, h("neg", 12), b"secret", b"public.clients.first_name")
good_siv = encrypt_deterministic("v1", v1, b"secret", b"public.clients.first_name")
kid, mid, payload = good.split(":")


def flip_char(s: str, i: int) -> str:
    c = s[i]
    return s[:i] + ("B" if c != "B" else "C") + s[i + 1:]


# Non-canonical padding: "secret" -> 22 bytes -> 32 chars with "==", so the
# last data character carries 4 padding bits; set one of them.
assert payload.endswith("==")
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
last = alphabet.index(payload[-3])
noncanon = payload[:-3] + alphabet[last | 1] + "=="

failures = [
    {"name": "wrong AD (value from another column)", "envelope": good, "ad": "public.clients.last_name", "reason": "authentication failed"},
    {"name": "AD none vs column AD", "envelope": good, "ad": None, "reason": "authentication failed"},
    {"name": "siv wrong AD", "envelope": good_siv, "ad": "public.clients.last_name", "reason": "authentication failed"},
    {"name": "unknown key id", "envelope": "v9:" + mid + ":" + payload, "ad": "public.clients.first_name", "reason": "unknown key id"},
    {"name": "key id swapped to another known key", "envelope": "v2:" + mid + ":" + payload, "ad": "public.clients.first_name", "reason": "authentication failed"},
    {"name": "nonce changed", "envelope": f"{kid}:{flip_char(mid, 3)}:{payload}", "ad": "public.clients.first_name", "reason": "authentication failed"},
    {"name": "ciphertext changed", "envelope": f"{kid}:{mid}:{flip_char(payload, 0)}", "ad": "public.clients.first_name", "reason": "authentication failed"},
    {"name": "tag changed", "envelope": f"{kid}:{mid}:{flip_char(payload, len(payload) - 4)}", "ad": "public.clients.first_name", "reason": "authentication failed"},
    {"name": "non-canonical base64 padding bits", "envelope": f"{kid}:{mid}:{noncanon}", "ad": "public.clients.first_name", "reason": "malformed envelope"},
    {"name": "randomized payload under siv marker", "envelope": f"{kid}:siv:{payload}", "ad": "public.clients.first_name", "reason": "authentication failed"},
]

# Values that are not envelopes at all (passed through as plaintext).
not_envelopes = [
    "",
    "John Doe",
    "v1",
    "v1:",
    "v1::",
    "v1:abc:def",
    "re: call me: later",
    ":" + mid + ":" + payload,  # empty key id
    "a" * 33 + ":" + mid + ":" + payload,  # key id too long
    "v 1:" + mid + ":" + payload,  # space in key id
    "v1:" + mid[:15] + ":" + payload,  # nonce 15 chars
    "v1:" + mid + "A:" + payload,  # nonce 17 chars
    "v1:" + mid[:15] + "=:" + payload,  # padding in nonce
    "v1:" + mid + ":" + payload[:-1],  # payload not a multiple of 4
    "v1:" + mid + ":" + payload[:-12],  # payload truncated below 16 bytes
    "v1:" + mid + ":" + payload + "\n",  # trailing newline
    " " + good,  # leading space
    "v1:" + mid + ":" + payload[:8] + "\n" + payload[8:],  # newline inside
    "v1:" + mid + ":" + payload[:-4] + "A===",  # three '='
    "v1:" + mid + ":" + payload[:-4] + "=AAA",  # '=' in the middle
    "v1:" + mid + ":" + payload + ":x",  # extra field
    "v1:SIV:" + good_siv.split(":")[2],  # marker is case sensitive
    "v1:siv:" + b64(bytes(15)),  # siv payload < 16 bytes
    "v1:" + b64(bytes(12)) + ":" + b64(bytes(15)),  # ct < 16 bytes
    "v1:" + mid + ":-_" + payload[2:],  # URL-safe alphabet
    "v1:" + mid + ":" + payload.rstrip("="),  # padding stripped
    "v1\u00e9:" + mid + ":" + payload,  # non-ASCII in key id
]

# Self-check against the grammar of cipher/doc.go, written as a regexp.
grammar = re.compile(
    r"\A[A-Za-z0-9_.-]{1,32}:(siv|[A-Za-z0-9+/]{16}):"
    r"((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==))\Z"
)


def is_envelope(s: str) -> bool:
    m = grammar.match(s)
    if not m:
        return False
    p = m.group(2)
    return len(p) // 4 * 3 - p.count("=") >= 16


for s in not_envelopes:
    assert not is_envelope(s), s
for v in vectors:
    assert is_envelope(v["envelope"]), v["name"]
for v in failures:
    assert is_envelope(v["envelope"]), v["name"]

out = {
    "comment": "Generated by gen_vectors.py with Python cryptography; do not edit. "
               "Keys are standard base64; ad null means no associated data; "
               "plaintexts are base64 so that they can hold any bytes.",
    "keys": {k: b64(v) for k, v in KEYS.items()},
    "hkdf_siv_keys_hex": {k: siv_key(v).hex() for k, v in KEYS.items()},
    "vectors": vectors,
    "failures": failures,
    "not_envelopes": not_envelopes,
}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1, ensure_ascii=True)
    f.write("\n")
print(f"wrote {len(vectors)} vectors, {len(failures)} failures, {len(not_envelopes)} non-envelopes to {path}")

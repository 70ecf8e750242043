#!/usr/bin/env python3
"""Independent reference decoder for sbsfu containers, written from docs/FORMAT.md alone.

It shares no code with the Rust implementation: if both accept the test vectors and agree on
the plaintext, the document says what the code does.

HPKE (RFC 9180) is written here from the RFC too: the key schedule on the standard library's
HMAC, X25519 and AES-GCM from the `cryptography` package. Before it decrypts anything it checks
itself against the CFRG test vector of the suite sbsfu uses.

usage: reference_decoder.py CONTAINER SIGNER_PUB_PEM [DEVICE_KEY_PEM] EXPECTED_IMAGE
       reference_decoder.py KEYSET ROOT_PUB_PEM EXPECTED_SIGNER_PUB_PEM...
DEVICE_KEY_PEM is an AES-256 device key (`SBSFU AES256 DEVICE KEY`) or an X25519 private key
(PKCS#8 `PRIVATE KEY`).
"""
import base64
import hashlib
import hmac
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding, NoEncryption, PrivateFormat, PublicFormat, load_pem_private_key, load_pem_public_key,
)

MAGIC = bytes.fromhex("89 53 46 55 0d 0a 1a 0a")
CONTEXT = b"sbsfu/v1/container-header\0"
KEYSET_MAGIC = bytes.fromhex("89 53 46 4b 0d 0a 1a 0a")
KEYSET_CONTEXT = b"sbsfu/v1/key-set\0"
HPKE_INFO = b"sbsfu/v1/hpke-content-key"
MAX_RECIPIENTS = 4


# RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-256-GCM 0x0002.
KEM_SUITE = b"KEM" + (0x0020).to_bytes(2, "big")
HPKE_SUITE = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0002).to_bytes(2, "big")


def hkdf_extract(salt, ikm):
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length):
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def labeled_extract(suite, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite, prk, label, info, length):
    return hkdf_expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def kem_shared_secret(dh, enc, pk_r):
    assert dh != bytes(32), "all-zero X25519 output"
    eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh)
    return labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, 32)


def key_schedule(shared_secret, info):
    psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(HPKE_SUITE, shared_secret, b"secret", b"")
    return (labeled_expand(HPKE_SUITE, secret, b"key", context, 32),
            labeled_expand(HPKE_SUITE, secret, b"base_nonce", context, 12))


def raw_x25519_public(private):
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def hpke_open(sk_r, enc, info, aad, ct):
    pk_r = raw_x25519_public(sk_r)
    dh = sk_r.exchange(X25519PublicKey.from_public_bytes(enc))
    key, nonce = key_schedule(kem_shared_secret(dh, enc, pk_r), info)
    return AESGCM(key).decrypt(nonce, ct, aad)


def check_cfrg_vector():
    """The CFRG test vector for mode 0, suite 0x0020/0x0001/0x0002 (first encryption), and the
    recipient side of RFC 9180 A.1.1 (same KEM)."""
    h = bytes.fromhex
    sk_e = X25519PrivateKey.from_private_bytes(
        h("28e212563a8b6f068af7ff17400ff1baf23612b7a738bbaf5dfb321b2b5b431a"))
    pk_r = h("ac66bae9ffa270cf4a89ed9f274e30c0456babae2572aaaf002ff0d8884ab018")
    enc = raw_x25519_public(sk_e)
    dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r))
    key, nonce = key_schedule(kem_shared_secret(dh, enc, pk_r),
                              h("4f6465206f6e2061204772656369616e2055726e"))
    ct = AESGCM(key).encrypt(nonce, h("4265617574792069732074727574682c20747275746820626561757479"),
                             h("436f756e742d30"))
    assert ct == h("23ded2d5d90ea89d975dac4792b297240f194952d7421aacbff0474100052b6bb8aa58d1"
                   "8ef6c42b6960e2e28f"), "CFRG HPKE vector (X25519, HKDF-SHA256, AES-256-GCM)"
    sk_r = X25519PrivateKey.from_private_bytes(
        h("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8"))
    enc = h("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
    shared = kem_shared_secret(sk_r.exchange(X25519PublicKey.from_public_bytes(enc)), enc,
                               raw_x25519_public(sk_r))
    assert shared == h("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc"), \
        "RFC 9180 A.1.1 shared secret"


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self):
        value, shift = 0, 0
        for i in range(5):
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if i > 0 and b == 0:
                    raise ValueError("non-canonical varint")
                if value >= 1 << 32:
                    raise ValueError("varint overflows u32")
                return value
        raise ValueError("varint too long")

    def string(self):
        return self.take(self.varint()).decode("ascii")


def name_ok(s, limit):
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    return 1 <= len(s) <= limit and s[0] not in "._-" and set(s) <= allowed


def parse_header(raw):
    r = Reader(raw)
    h = {
        "signer": r.take(8),
        "target": r.string(),
        "version": (r.varint(), r.varint(), r.varint()),
        "security_counter": r.varint(),
        "region": r.string(),
        "load_address": r.varint(),
        "image_len": r.varint(),
        "chunk_size": r.varint(),
        "digest": r.take(32),
    }
    h["digest_offset"] = r.pos - 32
    tag = r.varint()
    if tag == 0:
        h["chain_head"] = r.take(32)
    elif tag == 1:
        h["device_key"] = r.take(8)
        h["wrap_nonce"] = r.take(12)
        h["wrapped_key"] = r.take(32)
        h["wrap_tag"] = r.take(16)
        h["nonce_prefix"] = r.take(7)
    elif tag == 2:
        n = r.varint()
        if not 1 <= n <= MAX_RECIPIENTS:
            raise ValueError("recipient count")
        h["recipients"] = []
        for _ in range(n):
            key_id = r.take(8)
            at = r.pos  # enc, wrapped key and tag: 80 bytes, zeroed in the wrap's aad
            h["recipients"].append({"key_id": key_id, "at": at, "enc": r.take(32),
                                    "sealed": r.take(32) + r.take(16)})
        if len({x["key_id"] for x in h["recipients"]}) != n:
            raise ValueError("repeated recipient")
        h["nonce_prefix"] = r.take(7)
    else:
        raise ValueError("unknown protection")
    if r.pos != len(raw):
        raise ValueError("trailing bytes in header")
    if not name_ok(h["target"], 32) or not name_ok(h["region"], 16):
        raise ValueError("invalid name")
    c = h["chunk_size"]
    if h["image_len"] > 1 << 30 or c & (c - 1) or not 64 <= c <= 65536:
        raise ValueError("out of range")
    if h["load_address"] + h["image_len"] >= 1 << 32:
        raise ValueError("address overflow")
    return h


def key_id(context, key):
    return hashlib.sha256(context + key).digest()[:8]


def pem_body(path, label):
    lines = open(path).read().strip().splitlines()
    assert lines[0] == f"-----BEGIN {label}-----" and lines[-1] == f"-----END {label}-----", "PEM label"
    return base64.b64decode("".join(lines[1:-1]))


def raw_public(path):
    pub = load_pem_public_key(open(path, "rb").read())
    return pub, pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def take_prefix(r, magic, max_len, what):
    """The 12-byte prefix: the magic, version 1, and the length of what follows (1..=max_len)."""
    prefix = r.take(12)
    assert prefix[:8] == magic, "magic"
    assert int.from_bytes(prefix[8:10], "big") == 1, "version"
    length = int.from_bytes(prefix[10:12], "big")
    assert 1 <= length <= max_len, what
    return prefix, length


def keyset_main():
    data = open(sys.argv[1], "rb").read()
    root, root_raw = raw_public(sys.argv[2])
    expected = [raw_public(p)[1] for p in sys.argv[3:]]
    r = Reader(data)
    prefix, body_len = take_prefix(r, KEYSET_MAGIC, 192, "body length")
    body = r.take(body_len)
    signature = r.take(64)
    assert r.pos == len(data), "trailing bytes"
    b = Reader(body)
    epoch = b.varint()
    target = b.string()
    assert name_ok(target, 32), "target"
    root_id = b.take(8)
    keys_raw = b.take(b.varint())
    assert b.pos == len(body), "unused body bytes"
    assert len(keys_raw) % 32 == 0 and 1 <= len(keys_raw) // 32 <= 4, "key count"
    keys = [keys_raw[i:i + 32] for i in range(0, len(keys_raw), 32)]
    assert len(set(keys)) == len(keys), "repeated key"
    assert root_id == key_id(b"sbsfu/v1/key-id/ed25519", root_raw), "root key id"
    assert root_raw not in keys, "the root key listed as a signer"
    try:
        root.verify(signature, KEYSET_CONTEXT + prefix + body)
    except InvalidSignature:
        sys.exit("key set signature does not verify")
    assert keys == expected, "the key set does not list the expected keys"
    print(f"{sys.argv[1]}: OK (epoch {epoch}, target {target}, {len(keys)} keys)")


def main():
    if open(sys.argv[1], "rb").read(8) == KEYSET_MAGIC:
        return keyset_main()
    container = open(sys.argv[1], "rb").read()
    pub, pub_raw = raw_public(sys.argv[2])
    device_key = None
    if len(sys.argv) == 5:
        if open(sys.argv[3]).read().startswith("-----BEGIN PRIVATE KEY-----"):
            device_key = load_pem_private_key(open(sys.argv[3], "rb").read(), None)
            assert isinstance(device_key, X25519PrivateKey), "an X25519 private key"
        else:
            device_key = pem_body(sys.argv[3], "SBSFU AES256 DEVICE KEY")
            assert len(device_key) == 32
    expected = open(sys.argv[-1], "rb").read()

    r = Reader(container)
    prefix, header_len = take_prefix(r, MAGIC, 484, "header length")
    header_raw = r.take(header_len)
    h = parse_header(header_raw)
    signature = r.take(64)

    assert h["signer"] == key_id(b"sbsfu/v1/key-id/ed25519", pub_raw), "signer key id"
    try:
        pub.verify(signature, CONTEXT + prefix + header_raw)
    except InvalidSignature:
        sys.exit("signature does not verify")

    n = max(1, -(-h["image_len"] // h["chunk_size"]))
    plain = bytearray()
    if "chain_head" in h:
        expected_link = h["chain_head"]
        for i in range(n):
            last = i == n - 1
            length = h["image_len"] - i * h["chunk_size"] if last else h["chunk_size"]
            data = r.take(length)
            nxt = b"" if last else r.take(32)
            link = hashlib.sha256(
                b"sbsfu/v1/chain-link" + i.to_bytes(4, "big") + length.to_bytes(4, "big")
                + (b"\x01" if last else b"\x00") + data + nxt
            ).digest()
            assert link == expected_link, f"chain link {i}"
            expected_link = nxt
            plain += data
    else:
        assert device_key is not None, "encrypted: a device key is needed"
        zeroed = header_raw[:h["digest_offset"]] + bytes(32) + header_raw[h["digest_offset"] + 32:]
        if "recipients" in h:
            assert isinstance(device_key, X25519PrivateKey), "HPKE: an X25519 device key is needed"
            check_cfrg_vector()
            mine = key_id(b"sbsfu/v1/key-id/x25519", raw_x25519_public(device_key))
            found = [x for x in h["recipients"] if x["key_id"] == mine]
            assert found, "recipient key id: not encrypted to this device key"
            wrap_header = bytearray(zeroed)
            for x in h["recipients"]:
                wrap_header[x["at"]:x["at"] + 80] = bytes(80)
            wrap_aad = hashlib.sha256(CONTEXT + prefix + bytes(wrap_header)).digest()
            content_key = hpke_open(device_key, found[0]["enc"], HPKE_INFO, wrap_aad,
                                    found[0]["sealed"])
        else:
            assert h["device_key"] == key_id(b"sbsfu/v1/key-id/aes256", device_key), "device key id"
            content_key = AESGCM(device_key).decrypt(
                h["wrap_nonce"], h["wrapped_key"] + h["wrap_tag"], b"sbsfu/v1/content-key-wrap"
            )
        aad = hashlib.sha256(CONTEXT + prefix + zeroed).digest()
        aead = AESGCM(content_key)
        for i in range(n):
            last = i == n - 1
            length = h["image_len"] - i * h["chunk_size"] if last else h["chunk_size"]
            sealed = r.take(length + 16)
            nonce = h["nonce_prefix"] + i.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
            plain += aead.decrypt(nonce, sealed, aad)
    assert r.pos == len(container), "trailing bytes"
    assert hashlib.sha256(plain).digest() == h["digest"], "digest"
    assert bytes(plain) == expected, "plaintext differs from the expected image"
    print(f"{sys.argv[1]}: OK ({len(plain)} bytes, {n} chunks, "
          f"{'HPKE' if 'recipients' in h else 'encrypted' if device_key else 'signed only'})")


if __name__ == "__main__":
    main()

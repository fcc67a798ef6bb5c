"""shared.link_session signs with HMAC-SHA256 exactly as documented in shared.protocol.

The MAC is built from precomputed SHA-256 pad states (a hot-path saving); these tests hold
it to the standard library's ``hmac`` over the documented message, so the wire is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest

from shared.link_auth import NONCE_BYTES
from shared.link_session import SESSION_ID_BYTES, LinkSession, _derive, _keyed_pads

_HEADER = struct.Struct(">8sQccH")


@pytest.mark.parametrize("key_size", [0, 1, 32, 63, 64, 65, 200])
def test_the_pad_states_give_the_standard_hmac_for_any_key_size(key_size: int) -> None:
    key = os.urandom(key_size)
    inner, outer = _keyed_pads(key)
    for message in (b"", b"x", os.urandom(1000)):
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        assert o.digest() == hmac.new(key, message, hashlib.sha256).digest()


@pytest.mark.parametrize("body", [b"", b'{"text": "hello"}', os.urandom(70_000)])
def test_a_signature_is_the_documented_hmac_and_the_other_side_accepts_it(body: bytes) -> None:
    link_key, worker_nonce, gateway_nonce = os.urandom(32), os.urandom(NONCE_BYTES), os.urandom(NONCE_BYTES)
    worker = LinkSession(link_key, "openai", worker_nonce, gateway_nonce, "worker")
    gateway = LinkSession(link_key, "openai", worker_nonce, gateway_nonce, "gateway")
    rid = b"0123456789abcdef0123456789abcdef"
    signature = worker.sign(b"\x04", rid, body)
    session_key = _derive(link_key, "openai", worker_nonce, gateway_nonce)
    head = _HEADER.pack(gateway_nonce[:SESSION_ID_BYTES], 1, b"W", b"\x04", len(rid))
    assert signature[:16] == head[:16]
    assert signature[16:] == hmac.new(session_key, head + rid + body, hashlib.sha256).digest()
    assert gateway.verify([b"LLMC3", b"\x04", rid, body, signature]) == "ok"
    tampered = body + b" " if body else b"x"
    assert gateway.verify([b"LLMC3", b"\x04", rid, tampered, worker.sign(b"\x04", rid, body)]) == "bad_signature"

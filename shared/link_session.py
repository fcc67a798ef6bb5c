"""Per-message signatures on the gateway↔worker link, once a handshake has made a session.

A session key is derived from the link key, the worker's provider name and both
handshake nonces, so it is fresh for every handshake and useless for any other worker.
Every message after the handshake carries a 48-byte signature frame (see
``shared.protocol``): session id, a sequence number, and an HMAC-SHA256 over those, the
direction, the command, the request id and the payload.

This sits on the hot path (every chunk of every stream), so signing is one HMAC over
one small header plus the frames as they are, built from two SHA-256 states keyed once
per session (RFC 2104's inner and outer pads): per message both are copied and fed, and
the payload is fed as it is, never copied into a bigger buffer. Copying two hash states
costs fewer instructions than copying one OpenSSL HMAC context and finishing it (13.8k
against 20.3k per message, measured under callgrind), and the result is the same HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from shared.link_auth import NONCE_BYTES, Role

if TYPE_CHECKING:
    from hashlib import _Hash
from shared.protocol import logical

__all__ = [
    "SESSION_ID_BYTES",
    "SIGNATURE_BYTES",
    "FailureThrottle",
    "LinkSession",
    "from_hex",
    "session_id_of",
]

SESSION_ID_BYTES = 8
_MAC_BYTES = 32
_SIGNED_HEAD = SESSION_ID_BYTES + 8  # session id and sequence number, sent in clear
SIGNATURE_BYTES = _SIGNED_HEAD + _MAC_BYTES
_MAX_REQUEST_ID = 0xFFFF  # its length is signed as two bytes
_SESSION_DOMAIN = b"llm-caller link session v2"
_sha256 = hashlib.sha256
_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
# session id | sequence | direction | command | len(request id). The length prefix keeps
# request id and payload from trading bytes: ("ab", "c") and ("a", "bc") sign differently.
_HEADER = struct.Struct(">8sQccH")
_SEQ = struct.Struct(">Q")
# Who signed: a message cannot be reflected back to the side that sent it.
_DIRECTION: dict[str, bytes] = {"gateway": b"G", "worker": b"W"}

Verdict = Literal["ok", "missing_signature", "bad_signature", "replayed_message"]


class LinkSession:
    """One side's view of one session: signs what it sends, checks what it receives."""

    __slots__ = ("_in", "_inner", "_out", "_outer", "_recv_seq", "_send_seq", "name", "session_id")

    def __init__(self, link_key: bytes, name: str, worker_nonce: bytes, gateway_nonce: bytes, role: Role) -> None:
        if len(worker_nonce) != NONCE_BYTES or len(gateway_nonce) != NONCE_BYTES:
            raise ValueError(f"nonces must be {NONCE_BYTES} bytes")
        self.name = name
        self.session_id = gateway_nonce[:SESSION_ID_BYTES]
        self._inner, self._outer = _keyed_pads(_derive(link_key, name, worker_nonce, gateway_nonce))
        self._out = _DIRECTION[role]
        self._in = _DIRECTION["worker" if role == "gateway" else "gateway"]
        self._send_seq = 0
        self._recv_seq = 0

    def sign(self, command: bytes, request_id: bytes, body: bytes) -> bytes:
        """The signature frame for the next outgoing message (a ``shared.protocol.Signer``)."""
        self._send_seq += 1
        head = _HEADER.pack(self.session_id, self._send_seq, self._out, command, len(request_id))
        return head[:_SIGNED_HEAD] + self._mac(head, request_id, body)

    def verify(self, frames: Sequence[bytes]) -> Verdict:
        """Check an incoming message's five protocol frames; on "ok" its sequence number is used up."""
        frames = logical(frames)
        signature = frames[4]
        if len(signature) != SIGNATURE_BYTES:
            return "missing_signature"
        request_id, body = frames[2], frames[3]
        if signature[:SESSION_ID_BYTES] != self.session_id or len(request_id) > _MAX_REQUEST_ID:
            return "bad_signature"
        (seq,) = _SEQ.unpack_from(signature, SESSION_ID_BYTES)
        head = _HEADER.pack(self.session_id, seq, self._in, bytes(frames[1]), len(request_id))
        if not hmac.compare_digest(self._mac(head, request_id, body), signature[_SIGNED_HEAD:]):
            return "bad_signature"
        # Checked after the MAC, so only a genuine message can move the counter.
        if seq <= self._recv_seq:
            return "replayed_message"
        self._recv_seq = seq
        return "ok"

    def _mac(self, head: bytes, request_id: bytes, body: bytes) -> bytes:
        """HMAC-SHA256 of head, request id and body under the session key."""
        inner = self._inner.copy()
        inner.update(head)
        inner.update(request_id)
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _keyed_pads(key: bytes) -> tuple[_Hash, _Hash]:
    """SHA-256 states that have absorbed ``key`` XOR ipad and XOR opad (RFC 2104), for HMAC."""
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return _sha256(key.translate(_IPAD)), _sha256(key.translate(_OPAD))


def _derive(link_key: bytes, name: str, worker_nonce: bytes, gateway_nonce: bytes) -> bytes:
    parts = (_SESSION_DOMAIN, name.encode("utf-8"), worker_nonce, gateway_nonce)
    message = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
    return hmac.new(link_key, message, _sha256).digest()


def session_id_of(signature: bytes) -> bytes | None:
    """The session a signature frame claims, or None when the frame is not a signature."""
    return bytes(signature[:SESSION_ID_BYTES]) if len(signature) == SIGNATURE_BYTES else None


def from_hex(value: object, size: int) -> bytes | None:
    """Peer-supplied hex of exactly ``size`` bytes, or None: never raises on what a peer sent."""
    if not isinstance(value, str) or len(value) != 2 * size:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


class FailureThrottle:
    """At most one report per key per ``interval_s``, counting what it held back.

    A peer sending garbage in a loop must not turn the log (or the audit trail fed by
    it) into a flood; one line per second per (reason, peer) still shows the attack.
    """

    def __init__(self, interval_s: float = 1.0, max_keys: int = 1024) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def admit(self, key: tuple[str, str], now: float | None = None) -> int | None:
        """None to stay quiet; otherwise the number of reports suppressed since the last one."""
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= self.max_keys:
            self._last.clear()  # a flood of distinct keys: forget them all rather than grow
            self._held.clear()
        self._last[key] = now
        return self._held.pop(key, 0)

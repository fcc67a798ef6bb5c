"""The gateway↔worker wire protocol (version ``LLMC3``), defined in one place.

Transport: the gateway binds a ZeroMQ ROUTER; each worker connects a DEALER. The ROUTER
names each *connection* with an id libzmq assigns (workers set no identity), and the
gateway learns which provider sits behind a connection only from a completed handshake
(decision D11). Every message has five logical parts; on the wire they travel packed in
one ZeroMQ frame (``pack``/``unpack``: one send per message instead of five, which was the
largest single cost in the gateway's profile). The ROUTER adds the connection id in front
on receipt and strips it on send.

Logical parts (``encode``/``decode``)::

    [ version | command | request id | payload | signature ]
      b"LLMC3"  1 byte    ascii, may   orjson,   b"" (handshake) or 48 bytes:
                          be empty     may be    session id (8) | sequence (8, big-endian)
                                       empty     | HMAC-SHA256 (32)

The one wire frame (``pack``/``unpack``; both lengths are one byte)::

    version (5) | command (1) | len(request id) | len(signature) | request id | signature | payload

Every message, with its parts. "rid" is the request id (32 hex characters) or empty;
each payload's type is named, and built and read only through that type
(``shared.messages`` for the link's own messages, ``shared.models`` for call data,
``shared.errors`` for failures)::

    command     byte  from → to          rid   payload                                 trusted by
    HELLO       0x0a  worker → gateway   ""    {provider, nonce}                       nothing (unsigned)
    CHALLENGE   0x0b  gateway → worker   ""    {nonce, for, proof}                     its proof
    READY       0x01  worker → gateway   ""    messages.Ready: messages.Health fields,  proof and
                                               provider, kind, capabilities,           signature
                                               incarnation, pid, max_concurrency,
                                               challenge, proof
    REQUEST     0x02  gateway → worker   rid   messages.WorkRequest: {op, request,     signature
                                               timeout_s}; op a messages.Op, request
                                               a models.ChatRequest / EmbedRequest
                                               wire dict ({} for op "models")
    ACCEPTED    0x03  worker → gateway   rid   none: I have started it (from now on    signature
                                               it costs money)
    CHUNK       0x04  worker → gateway   rid   {text}: one streamed text delta         signature
    REPLY       0x05  worker → gateway   rid   the result: models.ChatResult /         signature
                                               EmbedResult wire dict, or {models}
    ERROR       0x06  worker → gateway   rid   the final error: errors payload         signature
                                               (LLMCallerError.to_payload)
    CANCEL      0x07  gateway → worker   rid   none: stop it, the client has gone      signature
    HEARTBEAT   0x08  worker → gateway   ""    messages.Health                         signature
                      gateway → worker   ""    none: I am alive                        signature
    DISCONNECT  0x09  worker → gateway   ""    none: I am going away                   signature
                      gateway → worker   ""    none: I do not know you, handshake      nothing (a
                                               again                                   hint only)

A call is REQUEST, then ACCEPTED, any CHUNKs, and one REPLY or ERROR (or ERROR alone,
when the worker refuses it before starting: unconfigured, or an unknown ``op``); a
CANCEL from the gateway ends it early.

Handshake (nonces are 32 random bytes, hex in the payload; proofs are
``shared.link_auth.prove`` over the link key, bound to the provider name and role)::

    worker  → HELLO      {provider: P, nonce: Nw}
    gateway → CHALLENGE  {nonce: Ng, for: Nw, proof: prove(key, Nw, P, "gateway")}
    worker    checks the proof over the nonce it just chose; derives the session key
    worker  → READY      {..., challenge: Ng, proof: prove(key, Ng, P, "worker")}, signed
    gateway   checks the proof over the nonce it issued to that connection (single use,
              expiring), then the signature; only now is the worker up

The session key is ``HMAC-SHA256(link key, "llm-caller link session v2", P, Nw, Ng)``
(length-prefixed); the session id is the first 8 bytes of ``Ng``. Each side signs every
later message with it: ``HMAC(session key, session id | sequence | direction | command |
len(request id) | request id | payload)``. The sequence number counts up per direction,
and a receiver refuses any number it has already passed, so a captured message cannot be
played again; the direction byte stops a message being reflected back at its sender.
A message with a missing or bad signature is dropped and logged as ``link_auth_failed``.

Why ACCEPTED exists: LLM calls are not idempotent. A request that no worker accepted
may be sent again; one a worker accepted and then died on must fail with
``worker_lost``, never be sent twice behind the caller's back.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "FRAME_COUNT",
    "PROTOCOL_VERSION",
    "Command",
    "Frame",
    "ProtocolError",
    "Signer",
    "decode",
    "encode",
    "logical",
    "pack",
    "unpack",
]

# LLMC3: the five parts packed in one frame (LLMC2 added the signature and the
# HELLO/CHALLENGE handshake). An older peer's messages are refused as an unsupported
# version, never half-understood.
PROTOCOL_VERSION = b"LLMC3"
FRAME_COUNT = 5
# Packed layout: version | command | request-id length | signature length | request id
# | signature | payload. Lengths are one byte: request ids are 32 hex characters and a
# signature 48 bytes, so both fit with room to spare.
_HEADER = len(PROTOCOL_VERSION) + 3


class Command(bytes, enum.Enum):
    READY = b"\x01"
    REQUEST = b"\x02"
    ACCEPTED = b"\x03"
    CHUNK = b"\x04"
    REPLY = b"\x05"
    ERROR = b"\x06"
    CANCEL = b"\x07"
    HEARTBEAT = b"\x08"
    DISCONNECT = b"\x09"
    HELLO = b"\x0a"
    CHALLENGE = b"\x0b"


_COMMANDS = {c.value: c for c in Command}
_EMPTY = b""

# (command byte, request id bytes, payload bytes) -> the signature frame.
Signer = Callable[[bytes, bytes, bytes], bytes]


class ProtocolError(Exception):
    """A message that does not follow this protocol; the receiver drops it and logs why."""


@dataclass(slots=True, frozen=True)
class Frame:
    command: Command
    request_id: str
    payload: Any


def encode(command: Command, request_id: str = "", payload: Any = None, sign: Signer | None = None) -> list[bytes]:
    """One message as wire frames (a single packed frame); ``sign`` fills the signature part
    (handshake messages have none)."""
    body = _EMPTY if payload is None else orjson.dumps(payload)
    rid = request_id.encode("ascii")
    signature = _EMPTY if sign is None else sign(command.value, rid, body)
    return [pack([PROTOCOL_VERSION, command.value, rid, body, signature])]


def pack(parts: Sequence[bytes]) -> bytes:
    """The five logical parts in one wire frame."""
    version, command, rid, body, signature = parts
    if len(rid) > 255 or len(signature) > 255:
        raise ProtocolError("request id or signature too long to pack")
    return b"".join((version, command, bytes((len(rid), len(signature))), rid, signature, body))


def unpack(frames: Sequence[bytes]) -> list[bytes]:
    """The five logical parts ``[version, command, request id, payload, signature]`` of a wire message."""
    if len(frames) != 1:
        raise ProtocolError(f"expected 1 frame, got {len(frames)}")
    wire = frames[0]
    if len(wire) < _HEADER:
        raise ProtocolError("message shorter than its header")
    version_end = len(PROTOCOL_VERSION)
    rid_len, sig_len = wire[version_end + 1], wire[version_end + 2]
    rid_end = _HEADER + rid_len
    sig_end = rid_end + sig_len
    if len(wire) < sig_end:
        raise ProtocolError("message shorter than its declared parts")
    return [wire[:version_end], wire[version_end:version_end + 1], wire[_HEADER:rid_end], wire[sig_end:],
            wire[rid_end:sig_end]]


def logical(frames: Sequence[bytes]) -> Sequence[bytes]:
    """The five logical parts, whether given packed (as received) or already unpacked."""
    return unpack(frames) if len(frames) == 1 else frames


def decode(frames: Sequence[bytes]) -> Frame:
    """Parse one message: wire frames (one packed frame) or its five logical parts, without the
    ROUTER's connection id. The signature is checked apart."""
    frames = logical(frames)
    if len(frames) != FRAME_COUNT:
        raise ProtocolError(f"expected {FRAME_COUNT} frames, got {len(frames)}")
    version, command, request_id, body, _signature = frames
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {bytes(version)[:16]!r}")
    cmd = _COMMANDS.get(bytes(command))
    if cmd is None:
        raise ProtocolError(f"unknown command {bytes(command)[:4]!r}")
    try:
        rid = bytes(request_id).decode("ascii")
        payload = orjson.loads(body) if body else None
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None
    return Frame(cmd, rid, payload)

"""The gateway↔worker wire protocol, defined in one place.

Transport: the gateway binds a ZeroMQ ROUTER; each worker connects a DEALER whose
routing identity is its provider name. Every message is four frames (the ROUTER adds
the identity frame in front on receipt and strips it on send)::

    [ version | command | request id | payload ]
      b"LLMC1"  1 byte    ascii, may   orjson, may
                          be empty     be empty

Commands and who sends them:

    READY       worker → gateway   I am up: provider, kind, capabilities, models, limits
    REQUEST     gateway → worker   do this: {op, request, deadline_s}
    ACCEPTED    worker → gateway   I have started it (from now on it costs money)
    CHUNK       worker → gateway   a streamed text delta: {text}
    REPLY       worker → gateway   the final result
    ERROR       worker → gateway   the final error: shared.errors payload
    CANCEL      gateway → worker   stop this request; the client has gone
    HEARTBEAT   both ways          I am alive; the worker's carries its health
    DISCONNECT  both ways          I am going away (worker) / register again (gateway)

Why ACCEPTED exists: LLM calls are not idempotent. A request that no worker accepted
may be sent again; one a worker accepted and then died on must fail with
``worker_lost``, never be sent twice behind the caller's back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PROTOCOL_VERSION", "Command", "Frame", "ProtocolError", "decode", "encode"]

PROTOCOL_VERSION = b"LLMC1"


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


_COMMANDS = {c.value: c for c in Command}
_EMPTY = b""


class ProtocolError(Exception):
    """A message that does not follow this protocol; the receiver drops it and logs why."""


@dataclass(slots=True, frozen=True)
class Frame:
    command: Command
    request_id: str
    payload: Any


def encode(command: Command, request_id: str = "", payload: Any = None) -> list[bytes]:
    body = _EMPTY if payload is None else orjson.dumps(payload)
    return [PROTOCOL_VERSION, command.value, request_id.encode("ascii"), body]


def decode(frames: list[bytes]) -> Frame:
    """Parse the four protocol frames (without the ROUTER's identity frame)."""
    if len(frames) != 4:
        raise ProtocolError(f"expected 4 frames, got {len(frames)}")
    version, command, request_id, body = frames
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {version[:16]!r}")
    cmd = _COMMANDS.get(bytes(command))
    if cmd is None:
        raise ProtocolError(f"unknown command {bytes(command)[:4]!r}")
    try:
        rid = bytes(request_id).decode("ascii")
        payload = orjson.loads(body) if body else None
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None
    return Frame(cmd, rid, payload)

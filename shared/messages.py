"""The typed payloads of the gateway↔worker link (``shared.protocol`` frames them).

Each message is built in one place from one of these classes and read on the other side
through the same class, never as a bare dict. Like ``shared.models`` they are plain
slotted dataclasses, not pydantic models (decision D5): the sender is an authenticated
process of ours, so ``from_wire`` checks shape, not every field, and costs no copies on
the per-call path (a REQUEST's ``request`` dict is carried by reference).

    REQUEST    WorkRequest   {op, request, timeout_s}                     per call
    READY      Ready         Health fields + provider, kind, capabilities, once per session
                             incarnation, pid, max_concurrency, challenge, proof
    HEARTBEAT  Health        status, reason, last_error, inflight,        every heartbeat_s
                             degraded_since, [circuit, counters], [models] (worker → gateway)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from shared import errors
from shared.models import ModelInfo
from shared.protocol import ProtocolError

__all__ = ["WORKER_STATUSES", "Health", "Op", "Ready", "WorkRequest", "WorkerStatus", "parse_op"]


class Op(enum.StrEnum):
    """What a REQUEST asks the worker to do. String-valued: the wire carries ``op.value``."""

    CHAT = "chat"
    CHAT_STREAM = "chat_stream"
    EMBED = "embed"
    # List the provider's models now (getHealth refresh_models); not a provider call on a caller's behalf.
    MODELS = "models"


_OPS: dict[object, Op] = {op.value: op for op in Op}

# "unknown" is the gateway's own word before a worker's first READY; a worker never sends it.
WorkerStatus = Literal["ready", "unconfigured", "degraded", "unknown"]
WORKER_STATUSES: tuple[WorkerStatus, ...] = ("ready", "unconfigured", "degraded", "unknown")


def parse_op(raw: object) -> Op:
    """The ``Op`` named on the wire; anything else is refused as an invalid request."""
    op = _OPS.get(raw) if isinstance(raw, str) else None
    if op is None:
        known = ", ".join(o.value for o in Op)
        raise errors.InvalidRequest(f"unknown operation {str(raw)[:40]!r}; this worker knows {known}")
    return op


def _mapping(data: object, message: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProtocolError(f"a {message} payload must be a JSON object, not {type(data).__name__}")
    return data


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class WorkRequest:
    """REQUEST: run ``op`` on ``request`` (a ``ChatRequest`` / ``EmbedRequest`` wire dict) within ``timeout_s``."""

    op: Op
    request: dict[str, Any]
    timeout_s: float = 60.0

    def to_wire(self) -> dict[str, Any]:
        # The member itself, not ``.value`` (a slow descriptor): orjson writes a StrEnum as its value.
        return {"op": self.op, "request": self.request, "timeout_s": self.timeout_s}

    @classmethod
    def from_wire(cls, data: object) -> WorkRequest:
        """Raises ``errors.InvalidRequest`` (the worker answers it with ERROR) for a bad shape or op."""
        # Per call: the shape the gateway always sends is checked with a few lookups and
        # type tests; anything else takes the careful path below.
        if type(data) is dict:
            raw, request, timeout = data.get("op"), data.get("request"), data.get("timeout_s")
            op = _OPS.get(raw) if type(raw) is str else None
            if op is not None and type(request) is dict and type(timeout) is float:
                return cls(op, request, timeout)
        return cls._from_odd_wire(data)

    @classmethod
    def _from_odd_wire(cls, data: object) -> WorkRequest:
        if not isinstance(data, dict):
            raise errors.InvalidRequest(f"a REQUEST payload must be a JSON object, not {type(data).__name__}")
        request = data.get("request") or {}
        timeout = data.get("timeout_s", 60.0)
        if not isinstance(request, dict) or not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise errors.InvalidRequest("a REQUEST needs an object `request` and a number `timeout_s`")
        return cls(parse_op(data.get("op")), request, float(timeout))


@dataclass(slots=True)
class Health:
    """HEARTBEAT (worker → gateway): how the worker is; READY carries the same fields.

    ``circuit`` and ``counters`` are None from a worker with no provider to call
    (unconfigured); ``models`` is None when they have not changed since last sent.
    """

    status: WorkerStatus
    reason: str | None = None
    last_error: str | None = None
    inflight: int = 0
    degraded_since: str | None = None
    circuit: dict[str, Any] | None = None
    counters: dict[str, int] | None = None
    models: list[ModelInfo] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"status": self.status, "reason": self.reason, "last_error": self.last_error,
                                "inflight": self.inflight, "degraded_since": self.degraded_since}
        if self.circuit is not None:
            wire["circuit"] = self.circuit
        if self.counters is not None:
            wire["counters"] = self.counters
        if self.models is not None:
            wire["models"] = [m.to_wire() for m in self.models]
        return wire

    @classmethod
    def from_wire(cls, data: object) -> Health:
        """Raises ``ProtocolError`` unless ``data`` is an object; a field of the wrong type reads as unknown."""
        fields = _mapping(data, "health")
        status = fields.get("status")
        circuit, counters, models = fields.get("circuit"), fields.get("counters"), fields.get("models")
        inflight = fields.get("inflight")
        return cls(
            status=status if status in WORKER_STATUSES else "unknown",
            reason=_optional_str(fields.get("reason")),
            last_error=_optional_str(fields.get("last_error")),
            inflight=inflight if isinstance(inflight, int) else 0,
            degraded_since=_optional_str(fields.get("degraded_since")),
            circuit=circuit if isinstance(circuit, dict) else None,
            counters=counters if isinstance(counters, dict) else None,
            models=[ModelInfo.from_wire(m) for m in models] if isinstance(models, list) else None,
        )


@dataclass(slots=True)
class Ready:
    """READY (worker → gateway, once per session): who the worker is, its health, and its handshake proof.

    ``proof`` holds the handshake's ``challenge`` and ``proof`` (hex), checked by the
    gateway's link security before anything else is read.
    """

    provider: str
    health: Health
    kind: str | None = None
    capabilities: list[str] = field(default_factory=list)
    incarnation: str | None = None
    pid: int | None = None
    max_concurrency: int = 0
    proof: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        wire = self.health.to_wire()
        wire.update(provider=self.provider, kind=self.kind, capabilities=self.capabilities,
                    incarnation=self.incarnation, pid=self.pid, max_concurrency=self.max_concurrency)
        wire.update(self.proof)
        return wire

    @classmethod
    def from_wire(cls, data: object) -> Ready:
        fields = _mapping(data, "READY")
        capabilities, pid, limit = fields.get("capabilities"), fields.get("pid"), fields.get("max_concurrency")
        return cls(
            provider=str(fields.get("provider", "")),
            health=Health.from_wire(fields),
            kind=_optional_str(fields.get("kind")),
            capabilities=[str(c) for c in capabilities] if isinstance(capabilities, list) else [],
            incarnation=_optional_str(fields.get("incarnation")),
            pid=pid if isinstance(pid, int) else None,
            max_concurrency=limit if isinstance(limit, int) else 0,
            proof={k: v for k in ("challenge", "proof") if isinstance(v := fields.get(k), str)},
        )

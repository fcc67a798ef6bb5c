"""One tool call's account: who called, what, how far routing got, and how it ended.

The MCP layer opens a ``CallRecord`` when a call arrives and closes it exactly once,
whatever happens: a result, a tool error, a crash, or the client cancelling (MCP
``notifications/cancelled`` or a dropped connection). The service fills in the route as
it learns it, so a call that fails after routing still names its provider and model.
The record is the one source of the call's ``tool_call`` log line and of its metrics, so
the two always agree.

Log fields may carry what the caller sent (a tool name it made up, a model the router
could not check); metric labels never do: they are mapped onto bounded sets here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import mcp_types as types

from gateway.metrics import GatewayMetrics
from shared.logs import log_event

__all__ = ["CANCELLED", "CallAccounting", "CallRecord"]

log = logging.getLogger("gateway.mcp")

# The outcome of a call whose client cancelled it or went away before the answer.
CANCELLED = "cancelled"
# The tool label of a call naming a tool that does not exist (the name is free text).
_UNKNOWN_TOOL = "unknown"
_MAX_TOOL_CHARS = 64

# (provider, model) as routing knew them -> (provider, model) metric labels from bounded sets.
LabelBound = Callable[[str | None, str | None], tuple[str, str]]


@dataclass
class CallRecord:
    """What is known about one call so far; closed once by ``CallAccounting.close``."""

    tool: str
    trace_id: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client: str | None = None
    provider: str | None = None
    model: str | None = None
    fallbacks: int = 0
    started: float = field(default_factory=time.perf_counter)
    closed: bool = False

    def routed(self, provider: str, model: str) -> None:
        """Routing chose (or moved on to) this provider and model."""
        self.provider = provider
        self.model = model


class CallAccounting:
    """Writes each call's one ``tool_call`` line and its one count and latency sample."""

    def __init__(self, metrics: GatewayMetrics | None, tools: Collection[str], bound: LabelBound) -> None:
        self._metrics = metrics
        self._tools = frozenset(tools)
        self._bound = bound

    def close(self, record: CallRecord, result: types.CallToolResult | None) -> None:
        """Account for ``record``: ``result`` is what the client got, None if it cancelled.

        A second close of the same record is ignored, so one call is never counted twice.
        """
        if record.closed:
            return
        record.closed = True
        seconds = time.perf_counter() - record.started
        error = _error_of(result)
        outcome = CANCELLED if result is None else str(error.get("type", "internal")) if error else "ok"
        provider = record.provider or _text(error.get("provider"))
        level = logging.WARNING if error else logging.INFO
        log_event(
            log, "tool_call", level=level, client=record.client, tool=record.tool[:_MAX_TOOL_CHARS],
            provider=provider, model=record.model, latency_ms=round(seconds * 1000, 3), outcome=outcome,
            error_class=error.get("type") if error else None, request_id=record.request_id,
            trace_id=record.trace_id, fallbacks=record.fallbacks or None,
        )
        if self._metrics is not None:
            tool = record.tool if record.tool in self._tools else _UNKNOWN_TOOL
            provider_label, model_label = self._bound(provider, record.model)
            self._metrics.calls.labels(tool, provider_label, model_label, outcome).inc()
            self._metrics.latency.labels(tool, provider_label, model_label, outcome).observe(seconds)


def _error_of(result: types.CallToolResult | None) -> dict[str, object]:
    if result is None or not result.is_error:
        return {}
    error = (result.structured_content or {}).get("error")
    return error if isinstance(error, dict) else {"type": "internal"}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None

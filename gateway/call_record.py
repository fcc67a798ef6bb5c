"""One tool call's account: who called, what, how far routing got, and how it ended.

The MCP layer opens a ``CallRecord`` when a call arrives and closes it exactly once,
whatever happens: a result, a tool error, a crash, or the client cancelling (MCP
``notifications/cancelled`` or a dropped connection). The service fills in the route as
it learns it, so a call that fails after routing still names its provider and model.
The record is the one source of the call's ``tool_call`` log line and of its metrics, so
the two always agree. It also carries the provider's reported usage and its cost
(``gateway.pricing``): token counts and ``cost_usd`` in the line, ``llmc_tokens_total`` and
``llmc_cost_usd_total`` in the metrics. A ledger can persist the same record: it holds every
column a usage row needs (client, tool, provider, model, outcome, latency, the four token
counts, cost, request and trace id).

Log fields may carry what the caller sent (a tool name it made up, a model the router
could not check); metric labels never do: they are mapped onto bounded sets here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mcp_types as types

from gateway.metrics import GatewayMetrics
from shared.logs import log_event
from shared.models import Usage

if TYPE_CHECKING:
    from gateway.budgets import Reservation
    from gateway.ledger import LedgerWriter

__all__ = ["CANCELLED", "CallAccounting", "CallRecord"]

log = logging.getLogger("gateway.mcp")

# The outcome of a call whose client cancelled it or went away before the answer.
CANCELLED = "cancelled"
# The tool label of a call naming a tool that does not exist (the name is free text).
_UNKNOWN_TOOL = "unknown"
_MAX_TOOL_CHARS = 64
_NO_USAGE = Usage()
# llmc_tokens_total's kind label: input includes cached_input, output includes reasoning (as in `usage`).
_INPUT, _CACHED, _OUTPUT, _REASONING = "input", "cached_input", "output", "reasoning"
_COST = ""  # the cost series' key in CallAccounting's cache (not a kind)

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
    # What the provider reported using (None: no provider answered), and its cost in USD
    # (None: unknown, because the model has no price or the provider reported no counts).
    usage: Usage | None = None
    cost_usd: float | None = None
    # What the call holds against its budgets (gateway.budgets); settled when it closes.
    reservation: Reservation | None = None

    def routed(self, provider: str, model: str) -> None:
        """Routing chose (or moved on to) this provider and model."""
        self.provider = provider
        self.model = model

    def used(self, usage: Usage, cost_usd: float | None) -> None:
        """The provider's reported usage for this call (a reply, or a stream that broke) and its cost."""
        self.usage = usage
        self.cost_usd = cost_usd


class CallAccounting:
    """Writes each call's one ``tool_call`` line and its one count and latency sample."""

    def __init__(self, metrics: GatewayMetrics | None, tools: Collection[str], bound: LabelBound,
                 ledger: LedgerWriter | None = None, ledgered: Collection[str] = ()) -> None:
        """``ledger``: where the calls of the ``ledgered`` tools (those that call a provider) are recorded."""
        self._metrics = metrics
        self._tools = frozenset(tools)
        self._bound = bound
        self._ledger = ledger
        self._ledgered = frozenset(ledgered)
        self._usage_series: dict[tuple[str, str, str, str], Any] = {}

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
        usage = record.usage or _NO_USAGE
        log_event(
            log, "tool_call", level=level, client=record.client, tool=record.tool[:_MAX_TOOL_CHARS],
            provider=provider, model=record.model, latency_ms=round(seconds * 1000, 3), outcome=outcome,
            error_class=error.get("type") if error else None, request_id=record.request_id,
            trace_id=record.trace_id, fallbacks=record.fallbacks or None,
            input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens, cost_usd=record.cost_usd,
        )
        if self._ledger is not None and record.tool in self._ledgered:
            self._ledger.record_call(record, outcome, error.get("type") if error else None, provider, seconds)
        if self._metrics is not None:
            tool = record.tool if record.tool in self._tools else _UNKNOWN_TOOL
            provider_label, model_label = self._bound(provider, record.model)
            self._metrics.calls.labels(tool, provider_label, model_label, outcome).inc()
            self._metrics.latency.labels(tool, provider_label, model_label, outcome).observe(seconds)
            if record.usage is not None:
                self._count_usage(record, provider_label, model_label)

    def _count_usage(self, record: CallRecord, provider: str, model: str) -> None:
        """Tokens by kind, and the cost when known, under bounded labels (client: a registry name).
        A count the provider did not report, or an unknown cost, adds nothing (no series made for it)."""
        assert record.usage is not None
        client = record.client or ""
        usage = record.usage
        for kind, count in ((_INPUT, usage.input_tokens), (_CACHED, usage.cached_input_tokens),
                            (_OUTPUT, usage.output_tokens), (_REASONING, usage.reasoning_tokens)):
            if count is not None and count >= 0:
                self._series(client, provider, model, kind).inc(count)
        if record.cost_usd is not None:
            self._series(client, provider, model, _COST).inc(record.cost_usd)

    def _series(self, client: str, provider: str, model: str, kind: str) -> Any:
        """One token series (``kind``) or the cost series (``_COST``), looked up once: ``labels()``
        costs a few microseconds, and a call would otherwise pay it up to five times."""
        key = (client, provider, model, kind)
        child = self._usage_series.get(key)
        if child is None:
            assert self._metrics is not None
            metric = self._metrics.cost.labels(client, provider, model) if kind == _COST else (
                self._metrics.tokens.labels(client, provider, model, kind))
            child = self._usage_series[key] = metric  # bounded as the labels are: registry names, configured models
        return child


def _error_of(result: types.CallToolResult | None) -> dict[str, object]:
    if result is None or not result.is_error:
        return {}
    error = (result.structured_content or {}).get("error")
    return error if isinstance(error, dict) else {"type": "internal"}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None

"""W3C trace context: accepted from clients, propagated gateway → worker → provider.

A client may send ``traceparent`` as an HTTP header or in the tool call's ``_meta`` (the
MCP convention). The gateway keeps the trace id, mints a new span id for its own hop, and
hands the result to the worker, which sends it to the provider. A call without a valid
``traceparent`` starts a new trace, so every log line still carries a trace id.

OpenTelemetry spans are exported only when the operator asks (``LLMC_OTEL_EXPORTER`` =
``console`` or ``otlp``); the exporter SDK is imported only then, so tracing costs nothing
otherwise. The MCP SDK's own spans share the same provider once one is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, get_tracer, set_span_in_context

from shared.logs import log_event

__all__ = ["TraceContext", "configure_exporter", "incoming_trace", "span"]

log = logging.getLogger("gateway.tracing")

# The MCP SDK already imports the OpenTelemetry API, so this costs no extra import.
_tracer = get_tracer("llm-caller")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    parent_span_id: str | None  # the caller's span, when it sent one
    span_id: str  # the gateway's hop
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        """The header value for the next hop: our span is its parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def _parse(value: str | None) -> tuple[str, str, str] | None:
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == _ZERO_TRACE or match.group(2) == _ZERO_SPAN:
        return None
    trace_id, span_id, flags = match.groups()
    return trace_id, span_id, flags


def incoming_trace(headers: Mapping[str, str] | None, meta: Mapping[str, Any] | None) -> TraceContext:
    """The trace this call belongs to: the client's (header first, then ``_meta``) or a new one."""
    candidates = [headers.get("traceparent") if headers is not None else None]
    if meta is not None and isinstance(meta.get("traceparent"), str):
        candidates.append(meta["traceparent"])
    for candidate in candidates:
        parsed = _parse(candidate)
        if parsed is not None:
            trace_id, parent, flags = parsed
            return TraceContext(trace_id, parent, secrets.token_hex(8), flags)
    return TraceContext(secrets.token_hex(16), None, secrets.token_hex(8))


@contextlib.contextmanager
def span(trace_ctx: TraceContext, name: str, **attributes: str) -> Iterator[None]:
    """An OpenTelemetry span for the gateway's hop, parented on the client's span.

    Without a configured tracer provider this is the API's no-op tracer: nearly free.
    """
    parent = None
    if trace_ctx.parent_span_id is not None:
        remote = SpanContext(trace_id=int(trace_ctx.trace_id, 16), span_id=int(trace_ctx.parent_span_id, 16),
                             is_remote=True, trace_flags=TraceFlags(int(trace_ctx.flags, 16)))
        parent = set_span_in_context(NonRecordingSpan(remote))
    with _tracer.start_as_current_span(name, context=parent, attributes=attributes, kind=SpanKind.SERVER):
        yield


def configure_exporter(env: Mapping[str, str] | None = None) -> bool:
    """Install an OpenTelemetry span exporter if the operator asked for one. Returns whether it did."""
    env = os.environ if env is None else env
    kind = env.get("LLMC_OTEL_EXPORTER", "").strip().lower()
    if not kind:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        log_event(log, "tracing_unavailable", level=logging.ERROR,
                  fix="install the otel extra: pip install 'llm-caller[otel]'")
        return False
    exporter: SpanExporter
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log_event(log, "tracing_unavailable", level=logging.ERROR,
                      fix="install the otel extra: pip install 'llm-caller[otel]'")
            return False
        exporter = OTLPSpanExporter()  # endpoint from OTEL_EXPORTER_OTLP_ENDPOINT
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "llm-caller-gateway"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log_event(log, "tracing_enabled", exporter=kind)
    return True

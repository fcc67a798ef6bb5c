"""W3C trace context in the gateway: accepted from clients, handed to the worker, exported as spans.

A client may send ``traceparent`` in the tool call's ``_meta`` (the MCP convention; the
SDK client injects its own ``MCP send tools/call`` span there) or as an HTTP header;
``_meta`` wins when both are valid, as it does for the SDK's server span. The gateway
keeps the trace id and names its own hop as the worker's parent; a call without a valid
``traceparent`` starts a new trace, so every ``tool_call`` line still carries a trace id.

With span export off (``shared.otel.active`` is None) that is all: the hop's span id is
minted here, nothing is exported, and no OpenTelemetry code runs beyond what the MCP SDK
does on its own. With export on, ``instrument`` puts two middlewares around the SDK's own
``tools/call`` span: the outer one parents that span on a header-only ``traceparent``;
the inner one opens the gateway's ``llm-caller <tool>`` span inside it, and ``call_trace``
reads the trace id and the hop's span id from that span. So one call is one trace:
client span → ``tools/call <tool>`` → ``llm-caller <tool>`` → the worker's span → the
``traceparent`` the provider receives, with the same trace id in the log line.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import Server

from shared import otel

__all__ = ["TraceContext", "call_trace", "configure_exporter", "incoming_trace", "instrument"]

# Longest tool name copied into a span: the name is the caller's input until validated.
_MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    parent_span_id: str | None  # the span this hop continues, when known
    span_id: str  # the gateway's hop
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        """The header value for the next hop: our span is its parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def incoming_trace(headers: Mapping[str, str] | None, meta: Mapping[str, Any] | None) -> TraceContext:
    """The trace this call belongs to: the client's (``_meta`` first, then the header) or a new one."""
    for candidate in (meta.get("traceparent") if meta is not None else None,
                      headers.get("traceparent") if headers is not None else None):
        parsed = otel.parse_traceparent(candidate)
        if parsed is not None:
            trace_id, parent, flags = parsed
            return TraceContext(trace_id, parent, secrets.token_hex(8), flags)
    return TraceContext(secrets.token_hex(16), None, secrets.token_hex(8))


def call_trace(headers: Mapping[str, str] | None, meta: Mapping[str, Any] | None) -> TraceContext:
    """This call's trace context: from the gateway's exported span when tracing is on."""
    tracing = otel.active
    if tracing is None:  # the one test tracing costs when it is off
        return incoming_trace(headers, meta)
    span = tracing.current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid:  # called outside the instrumented chain (a unit test's bare handler)
        return incoming_trace(headers, meta)
    parent = getattr(span, "parent", None)
    return TraceContext(f"{ctx.trace_id:032x}", f"{parent.span_id:016x}" if parent is not None else None,
                        f"{ctx.span_id:016x}", f"{int(ctx.trace_flags):02x}")


def configure_exporter(env: Mapping[str, str] | None = None) -> bool:
    """Install the gateway's span exporter if the operator asked for one (``shared.otel``)."""
    return otel.configure("gateway", env)


def instrument(server: Server[Any]) -> None:
    """Wrap the SDK's ``tools/call`` span with ours when span export is on; otherwise do nothing."""
    tracing = otel.active
    if tracing is None:
        return
    server.middleware.insert(0, _ParentFromHeader(tracing))
    server.middleware.append(_GatewaySpan(tracing))


def _header(ctx: ServerRequestContext[Any, Any], name: str) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    value = headers.get(name) if headers is not None else None
    return value if isinstance(value, str) else None


class _ParentFromHeader:
    """Outermost: a valid HTTP ``traceparent`` becomes the SDK span's parent when ``_meta`` has none."""

    def __init__(self, tracing: otel.Tracing) -> None:
        self._tracing = tracing

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        meta = ctx.meta
        if meta is not None and otel.parse_traceparent(meta.get("traceparent")) is not None:
            return await call_next(ctx)  # the SDK's span continues the _meta trace itself
        parent = self._tracing.remote_parent(_header(ctx, "traceparent"))
        if parent is None:
            return await call_next(ctx)
        with self._tracing.attached(parent):
            return await call_next(ctx)


class _GatewaySpan:
    """Innermost: the gateway's own span for a tool call, carrying who called what and how it ended."""

    def __init__(self, tracing: otel.Tracing) -> None:
        self._tracing = tracing

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        name = ctx.params.get("name") if ctx.params else None
        tool = name[:_MAX_NAME] if isinstance(name, str) else "?"
        token = get_access_token()
        attributes = {"llmc.tool": tool, "llmc.client": token.client_id if token is not None else ""}
        with self._tracing.span(f"llm-caller {tool}", self._tracing.kinds.INTERNAL, attributes) as span:
            result = await call_next(ctx)
            self._record(span, result)
            return result

    def _record(self, span: Any, result: HandlerResult) -> None:
        """Route and outcome from the result the client gets: ids and names, never text."""
        if not isinstance(result, dict):
            return
        data = result.get("structuredContent")
        data = data if isinstance(data, dict) else {}
        error = data.get("error") if result.get("isError") else None
        fields = error if isinstance(error, dict) else data
        for key, attribute in (("provider", "llmc.provider"), ("model", "gen_ai.request.model"),
                               ("request_id", "llmc.request_id")):
            value = fields.get(key)
            if isinstance(value, str) and value:
                span.set_attribute(attribute, value[:_MAX_NAME])
        if result.get("isError"):
            error_type = fields.get("type") if isinstance(fields.get("type"), str) else "internal"
            self._tracing.fail(span, str(error_type))
            span.set_attribute("llmc.outcome", str(error_type))
        else:
            span.set_attribute("llmc.outcome", "ok")

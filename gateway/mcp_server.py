"""The MCP surface: four tools on the SDK's low-level ``Server``.

We use the low-level server rather than ``MCPServer`` so that this module owns argument
validation and error shapes: every failure becomes a taxonomy error with a message that
names the offending field, and nothing (no pydantic URL, no traceback) leaks through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from gateway.client_limits import ClientLimiter
from gateway.compose import error_result, success_result
from gateway.metrics import GatewayMetrics
from gateway.service import VERSION, GatewayService
from gateway.tool_schemas import (
    ChatInput,
    ChatOutput,
    EmbedInput,
    EmbedOutput,
    HealthInput,
    HealthOutput,
    output_schema,
    param_header_schema,
)
from gateway.tracing import TraceContext, incoming_trace, span
from shared import errors
from shared.config import ClientEntry
from shared.logs import log_event
from shared.timeline import mark

__all__ = ["build_mcp_server"]

log = logging.getLogger("gateway.mcp")

ClientLookup = Callable[[str], ClientEntry | None]

_TOOLS: dict[str, tuple[type[BaseModel], type[BaseModel], str]] = {
    "chat": (
        ChatInput,
        ChatOutput,
        "Send a conversation (or a single prompt) to an LLM and return its reply. The provider and "
        "model are chosen by name, by model, or by the configured default; the result says which.",
    ),
    "chatStream": (
        ChatInput,
        ChatOutput,
        "Like chat, but each piece of text is sent as an MCP progress notification as soon as the "
        "provider produces it (pass a progressToken). The result carries the full text and usage, "
        "`chunks` (deltas received) and `notifications` (progress notifications sent).",
    ),
    "embed": (
        EmbedInput,
        EmbedOutput,
        "Turn one text or a list of texts into embedding vectors.",
    ),
    "getHealth": (
        HealthInput,
        HealthOutput,
        "Report the gateway's status and, per provider worker, whether it is up, its last heartbeat "
        "age, capabilities, models and last error class.",
    ),
}

_TOOL_LIST = [
    types.Tool(
        name=name,
        description=description,
        input_schema=inp.model_json_schema(),
        output_schema=output_schema(out),
        annotations=types.ToolAnnotations(read_only_hint=name == "getHealth", open_world_hint=name != "getHealth"),
    )
    for name, (inp, out, description) in _TOOLS.items()
]
_PARAM_HEADER_SCHEMAS = {t.name: param_header_schema(t.input_schema) for t in _TOOL_LIST}


def _validation_message(exc: ValidationError) -> str:
    """Field paths and reasons only: the rejected values are the caller's data."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid arguments: " + "; ".join(problems[:10])


def build_mcp_server(
    service: GatewayService, client_lookup: ClientLookup, limiter: ClientLimiter | None = None
) -> Server[Any]:
    metrics = service.metrics
    if limiter is None:
        limiter = ClientLimiter(on_reject=metrics.client_rejections.labels(
            "any").inc if metrics is not None else None)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=_TOOL_LIST)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        mark("gateway.tool_in")
        name = params.name
        if name not in _TOOLS:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {name[:64]!r}; tools: {', '.join(_TOOLS)}")
        trace = incoming_trace(getattr(ctx.request, "headers", None), ctx.meta)
        started = time.perf_counter()
        client_id = ""
        try:
            client_id, client = _authorise(client_lookup, name)
            if client is None or name == "getHealth":
                result = await _dispatch(service, ctx, name, params.arguments or {}, client, trace)
            else:
                async with limiter.admit(client_id, client.limits):
                    with span(trace, f"llm-caller {name}", tool=name, client=client_id):
                        result = await _dispatch(service, ctx, name, params.arguments or {}, client, trace)
        except errors.LLMCallerError as exc:
            result = error_result(exc)
        except Exception:
            log.exception("call_crashed", extra={"tool": name, "trace_id": trace.trace_id})
            result = error_result(errors.InternalError("the gateway failed unexpectedly; the error was logged"))
        _finish(metrics, name, client_id, trace, result, time.perf_counter() - started)
        mark("gateway.tool_out")
        return result

    return Server(
        "llm-caller",
        version=VERSION,
        instructions="LLM Caller: chat, chatStream, embed and getHealth across configured LLM providers.",
        get_tool_input_schema=_PARAM_HEADER_SCHEMAS.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _authorise(client_lookup: ClientLookup, tool: str) -> tuple[str, ClientEntry | None]:
    token = get_access_token()
    if token is None:
        return "", None  # STDIO or tests without HTTP auth: the transport vouched for the caller
    client = client_lookup(token.client_id)
    if client is None:
        raise errors.AuthError("this client is no longer in the registry")
    if not client.may_call(tool):
        raise errors.PermissionDenied(f"client {token.client_id!r} may not call {tool}")
    return token.client_id, client


def _finish(
    metrics: GatewayMetrics | None, tool: str, client_id: str, trace: TraceContext,
    result: types.CallToolResult, seconds: float,
) -> None:
    """One log line and one metrics update per call, whatever its outcome."""
    data = result.structured_content or {}
    error = data.get("error", {}) if result.is_error else {}
    outcome = error.get("type", "internal") if result.is_error else "ok"
    provider = (error.get("provider") if result.is_error else data.get("provider")) or ""
    model = "" if result.is_error else data.get("model", "")
    log_event(
        log, "tool_call", level=logging.WARNING if result.is_error else logging.INFO,
        client=client_id or None, tool=tool, provider=provider or None, model=model or None,
        latency_ms=round(seconds * 1000, 3), outcome=outcome, error_class=error.get("type"),
        request_id=error.get("request_id") if result.is_error else data.get("request_id"),
        trace_id=trace.trace_id,
    )
    if metrics is not None:
        metrics.calls.labels(tool, provider, model, outcome).inc()
        metrics.latency.labels(tool, provider).observe(seconds)


async def _dispatch(
    service: GatewayService,
    ctx: ServerRequestContext[Any],
    name: str,
    arguments: dict[str, Any],
    client: ClientEntry | None,
    trace: TraceContext,
) -> types.CallToolResult:
    input_model = _TOOLS[name][0]
    try:
        args = input_model.model_validate(arguments)
    except ValidationError as exc:
        raise errors.InvalidRequest(_validation_message(exc)) from None
    if name == "getHealth":
        assert isinstance(args, HealthInput)
        if args.refresh_models:
            await service.refresh_models()
        return success_result(service.health())
    if name == "embed":
        assert isinstance(args, EmbedInput)
        embedded = await service.embed(args, client, trace)
        summary = f"{len(embedded.vectors)} vectors of {embedded.dimensions} dimensions from {embedded.provider}"
        return success_result(embedded, summary)
    assert isinstance(args, ChatInput)
    if name != "chatStream":
        output = await service.chat(args, client, None, trace)
        return success_result(output, output.text)
    reporter = _ProgressReporter(ctx)
    output = await service.chat(args, client, reporter.report, trace)
    output.notifications = reporter.sent
    return success_result(output, output.text)


class _ProgressReporter:
    """Sends each chatStream delta as a progress notification, counting those actually sent."""

    def __init__(self, ctx: ServerRequestContext[Any]) -> None:
        self._ctx = ctx
        # Without a progressToken the SDK sends nothing, so nothing is counted either.
        self._wanted = (ctx.meta or {}).get("progress_token") is not None
        self.sent = 0

    async def report(self, count: int, text: str) -> None:
        await self._ctx.session.report_progress(count, None, text)
        if self._wanted:
            self.sent += 1

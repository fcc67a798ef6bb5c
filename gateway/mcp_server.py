"""The MCP surface: four tools on the SDK's low-level ``Server``.

We use the low-level server rather than ``MCPServer`` so that this module owns argument
validation and error shapes: every failure becomes a taxonomy error with a message that
names the offending field, and nothing (no pydantic URL, no traceback) leaks through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from gateway.call_record import CallAccounting, CallRecord
from gateway.client_limits import ClientLimiter
from gateway.compose import error_result, success_result
from gateway.metrics import GatewayMetrics
from gateway.service import GatewayService
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
from gateway.tracing import TraceContext, call_trace, instrument
from shared import errors
from shared.config import ClientEntry
from shared.timeline import mark
from shared.version import VERSION

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
        "provider produces it (pass a progressToken). The result carries the full text and usage.",
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
        limiter = ClientLimiter(on_reject=_count_rejection(metrics))
    accounting = CallAccounting(metrics, _TOOLS, service.metric_labels)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=_TOOL_LIST)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        mark("gateway.tool_in")
        name = params.name
        trace = call_trace(getattr(ctx.request, "headers", None), ctx.meta)
        record = CallRecord(tool=name, trace_id=trace.trace_id)
        token = get_access_token()
        record.client = token.client_id if token is not None else None
        if name not in _TOOLS:
            problem = f"unknown tool {name[:64]!r}; tools: {', '.join(_TOOLS)}"
            accounting.close(record, error_result(errors.NotFound(problem, request_id=record.request_id)))
            raise MCPError(types.INVALID_PARAMS, problem)
        try:
            client = _authorise(client_lookup, name, record.client)
            if client is None or name == "getHealth":
                result = await _dispatch(service, ctx, name, params.arguments or {}, client, trace, record)
            else:
                assert record.client is not None
                async with limiter.admit(record.client, client.limits):
                    result = await _dispatch(service, ctx, name, params.arguments or {}, client, trace, record)
        except errors.LLMCallerError as exc:
            exc.request_id = exc.request_id or record.request_id
            result = error_result(exc)
        except asyncio.CancelledError:
            # The client sent notifications/cancelled or closed the connection: no answer
            # goes out, but the call still ends in exactly one line and one count.
            accounting.close(record, None)
            raise
        except Exception:
            log.exception("call_crashed", extra={"tool": name, "trace_id": trace.trace_id})
            result = error_result(errors.InternalError("the gateway failed unexpectedly; the error was logged",
                                                       request_id=record.request_id))
        accounting.close(record, result)
        mark("gateway.tool_out")
        return result

    server: Server[Any] = Server(
        "llm-caller",
        version=VERSION,
        instructions="LLM Caller: chat, chatStream, embed and getHealth across configured LLM providers.",
        get_tool_input_schema=_PARAM_HEADER_SCHEMAS.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    instrument(server)  # span export only: nothing when it is off
    return server


def _count_rejection(metrics: GatewayMetrics | None) -> Callable[[str], None] | None:
    """Count a per-client limit rejection under the client's registry name (a bounded label)."""
    if metrics is None:
        return None
    rejections = metrics.client_rejections
    return lambda client_id: rejections.labels(client_id).inc()


def _authorise(client_lookup: ClientLookup, tool: str, client_id: str | None) -> ClientEntry | None:
    """The caller's registry entry; None when no HTTP auth ran (STDIO, tests): the transport vouched."""
    if client_id is None:
        return None
    client = client_lookup(client_id)
    if client is None:
        raise errors.AuthError("this client is no longer in the registry")
    if not client.may_call(tool):
        raise errors.PermissionDenied(f"client {client_id!r} may not call {tool}")
    return client


async def _dispatch(
    service: GatewayService,
    ctx: ServerRequestContext[Any],
    name: str,
    arguments: dict[str, Any],
    client: ClientEntry | None,
    trace: TraceContext,
    record: CallRecord,
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
        embedded = await service.embed(args, client, trace, record)
        summary = f"{len(embedded.vectors)} vectors of {embedded.dimensions} dimensions from {embedded.provider}"
        return success_result(embedded, summary)
    assert isinstance(args, ChatInput)
    progress = _progress_reporter(ctx) if name == "chatStream" else None
    output = await service.chat(args, client, progress, trace, record)
    return success_result(output, output.text)


def _progress_reporter(ctx: ServerRequestContext[Any]) -> Callable[[int, str], Coroutine[Any, Any, None]]:
    async def report(count: int, text: str) -> None:
        # A no-op in the SDK when the client sent no progressToken.
        await ctx.session.report_progress(count, None, text)

    return report

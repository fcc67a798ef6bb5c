"""The MCP surface: the tools of ``gateway.tool_table`` on the SDK's low-level ``Server``.

We use the low-level server rather than ``MCPServer`` so that this module owns argument
validation and error shapes: every failure becomes a taxonomy error with a message that
names the offending field, and nothing (no pydantic URL, no traceback) leaks through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from gateway.call_record import CallAccounting, CallRecord
from gateway.client_limits import ClientLimiter
from gateway.compose import error_result
from gateway.metrics import GatewayMetrics
from gateway.service import GatewayService
from gateway.tasks.extension import install_tasks, task_call
from gateway.tasks.runner import TaskRunner
from gateway.tool_table import INSTRUCTIONS, PARAM_HEADER_SCHEMAS, TABLE, TOOL_LIST, ToolDecl
from gateway.tracing import TraceContext, call_trace, instrument
from shared import errors
from shared.config import ClientEntry
from shared.timeline import mark
from shared.version import VERSION

__all__ = ["build_mcp_server"]

log = logging.getLogger("gateway.mcp")

ClientLookup = Callable[[str], ClientEntry | None]
# Dispatch: one dict lookup by the name the caller sent (free text, so keyed by str).
_BY_NAME: dict[str, ToolDecl[Any]] = {name: decl for name, decl in TABLE.items()}

def _validation_message(exc: ValidationError) -> str:
    """Field paths and reasons only: the rejected values are the caller's data."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "invalid arguments: " + "; ".join(problems[:10])


def build_mcp_server(
    service: GatewayService, client_lookup: ClientLookup, limiter: ClientLimiter | None = None,
    tasks: TaskRunner | None = None,
) -> Server[Any]:
    """The MCP server; with ``tasks``, the Tasks extension is advertised and served (``gateway.tasks``)."""
    metrics = service.metrics
    if limiter is None:
        limiter = ClientLimiter(on_reject=_count_rejection(metrics))
    accounting = CallAccounting(metrics, TABLE, service.metric_labels, service.ledger,
                                [name for name, decl in TABLE.items() if decl.calls_provider])

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOL_LIST)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        mark("gateway.tool_in")
        name = params.name
        trace = call_trace(getattr(ctx.request, "headers", None), ctx.meta)
        record = CallRecord(tool=name, trace_id=trace.trace_id)
        token = get_access_token()
        record.client = token.client_id if token is not None else None
        decl = _BY_NAME.get(name)
        if decl is None:
            problem = f"unknown tool {name[:64]!r}; tools: {', '.join(TABLE)}"
            accounting.close(record, error_result(errors.NotFound(problem, request_id=record.request_id)))
            raise MCPError(types.INVALID_PARAMS, problem)
        arguments = params.arguments or {}

        async def run() -> types.CallToolResult:
            return await _run_call(service, ctx, decl, arguments, client_lookup, limiter, accounting, trace, record)

        handle = await task_call(tasks, service, ctx, name, decl, arguments, record.client, run)
        if handle is not None:
            return handle  # type: ignore[return-value]  # a CreateTaskResult (resultType "task") or the plain result
        return await run()

    server: Server[Any] = Server(
        "llm-caller",
        version=VERSION,
        instructions=f"LLM Caller: {INSTRUCTIONS}",
        get_tool_input_schema=PARAM_HEADER_SCHEMAS.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    if tasks is not None:
        install_tasks(server, tasks, client_lookup)
    instrument(server)  # span export only: nothing when it is off
    return server


async def _run_call(
    service: GatewayService, ctx: ServerRequestContext[Any], decl: ToolDecl[Any], arguments: dict[str, Any],
    client_lookup: ClientLookup, limiter: ClientLimiter, accounting: CallAccounting, trace: TraceContext,
    record: CallRecord,
) -> types.CallToolResult:
    """One call, start to end: authorise, admit, dispatch, and exactly one line and one count."""
    name = record.tool
    try:
        client = _authorise(client_lookup, name, record.client)
        if client is None or not decl.calls_provider:
            result = await _dispatch(service, ctx, decl, arguments, client, trace, record)
        else:
            assert record.client is not None
            async with limiter.admit(record.client, client.limits):
                result = await _dispatch(service, ctx, decl, arguments, client, trace, record)
    except errors.LLMCallerError as exc:
        exc.request_id = exc.request_id or record.request_id
        result = error_result(exc)
    except asyncio.CancelledError:
        # The client sent notifications/cancelled, closed the connection or cancelled its
        # task: no answer goes out, but the call still ends in exactly one line and one count.
        accounting.close(record, None)
        raise
    except Exception:
        log.exception("call_crashed", extra={"tool": name, "trace_id": trace.trace_id})
        result = error_result(errors.InternalError("the gateway failed unexpectedly; the error was logged",
                                                   request_id=record.request_id))
    accounting.close(record, result)
    mark("gateway.tool_out")
    return result


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
    decl: ToolDecl[Any],
    arguments: dict[str, Any],
    client: ClientEntry | None,
    trace: TraceContext,
    record: CallRecord,
) -> types.CallToolResult:
    """Validate the arguments against the tool's input model, then run its handler."""
    try:
        args = decl.input.model_validate(arguments)
    except ValidationError as exc:
        raise errors.InvalidRequest(_validation_message(exc)) from None
    return await decl.handler(service, ctx, args, client, trace, record)

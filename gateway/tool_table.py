"""The MCP tools, one declaration each: the table everything that serves a tool reads.

A declaration (``ToolDecl``) holds a tool's description, its input and output models, the
provider capability it uses and its handler. The tool names themselves are the shared
fact in ``shared.tool_names`` (the client registry checks grants against them without
importing the gateway); this table attaches the rest to them, in the same order.

Read by: ``tools/list`` and dispatch (``gateway.mcp_server``), capability and per-client
limit checks, the server instructions (here and in ``stdio_front.front``), the
interface reference (``docgen`` writes docs/interface.md from ``TOOL_LIST``), the
UAT ``tools/list`` expectations and the README tools table check (tests).

A new tool: its name in ``shared.tool_names.ToolName``, its input/output models in
``gateway.tool_schemas``, a handler and one ``ToolDecl`` line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import mcp_types as types
from mcp.server.context import ServerRequestContext
from pydantic import BaseModel

from gateway.call_record import CallRecord
from gateway.compose import success_result
from gateway.service import GatewayService
from gateway.store.records import StoreError
from gateway.tasks import progress as task_progress
from gateway.threads import owner_of, store_failure
from gateway.threads_tool import ThreadsInput, ThreadsOutput, run_threads
from gateway.tool_schemas import (
    ChatInput,
    ChatOutput,
    EmbedInput,
    EmbedOutput,
    HealthInput,
    HealthOutput,
    ListModelsInput,
    ListModelsOutput,
    output_schema,
    param_header_schema,
)
from gateway.tracing import TraceContext
from shared.config import ClientEntry
from shared.models import Capability
from shared.tool_names import TOOL_NAMES, ToolName, describe_tools

__all__ = ["INSTRUCTIONS", "PARAM_HEADER_SCHEMAS", "TABLE", "TOOL_LIST", "ToolDecl"]

InT = TypeVar("InT", bound=BaseModel)
Context = ServerRequestContext[Any]
# (service, request context, validated input, caller's registry entry or None, trace, call record)
Handler = Callable[[GatewayService, Context, InT, ClientEntry | None, TraceContext, CallRecord],
                   Awaitable[types.CallToolResult]]


@dataclass(frozen=True, slots=True)
class ToolDecl(Generic[InT]):
    """One tool. ``capability`` None: it calls no provider, so it is read-only, closed-world
    and not metered by the client's per-minute limits (which count provider calls)."""

    description: str
    input: type[InT]
    output: type[BaseModel]
    capability: Capability | None
    handler: Handler[InT]
    # It may delete what the caller kept (so it is not read-only even though it calls no provider).
    destructive: bool = False

    @property
    def calls_provider(self) -> bool:
        return self.capability is not None


async def _chat(service: GatewayService, ctx: Context, args: ChatInput, client: ClientEntry | None,
                trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    output = await service.chat(args, client, None, trace, record)
    return success_result(output, output.text)


async def _chat_stream(service: GatewayService, ctx: Context, args: ChatInput, client: ClientEntry | None,
                       trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    reporter = _ProgressReporter(ctx)
    task = task_progress.CURRENT.get()  # run as an MCP task: deltas go to its status message
    output = await service.chat(args, client, reporter.report if task is None else task.report, trace, record)
    output.notifications = reporter.sent
    return success_result(output, output.text)


async def _embed(service: GatewayService, ctx: Context, args: EmbedInput, client: ClientEntry | None,
                 trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    embedded = await service.embed(args, client, trace, record)
    summary = f"{len(embedded.vectors)} vectors of {embedded.dimensions} dimensions from {embedded.provider}"
    return success_result(embedded, summary)


async def _list_models(service: GatewayService, ctx: Context, args: ListModelsInput, client: ClientEntry | None,
                       trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    listed = service.list_models(args, client)
    return success_result(listed)


async def _health(service: GatewayService, ctx: Context, args: HealthInput, client: ClientEntry | None,
                  trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    if args.refresh_models:
        await service.refresh_models()
    health = service.health()
    health.usage = service.client_usage(record.client, client)  # the caller's own, never another's
    return success_result(health)


async def _threads(service: GatewayService, ctx: Context, args: ThreadsInput, client: ClientEntry | None,
                   trace: TraceContext, record: CallRecord) -> types.CallToolResult:
    try:
        output = await run_threads(service.store.get(), owner_of(record.client), args)
    except StoreError as exc:
        raise store_failure(exc) from None
    return success_result(output)


class _ProgressReporter:
    """Sends each chatStream delta as a progress notification, counting those actually sent."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        # Without a progressToken the SDK sends nothing, so nothing is counted either.
        self._wanted = (ctx.meta or {}).get("progress_token") is not None
        self.sent = 0

    async def report(self, count: int, text: str) -> None:
        await self._ctx.session.report_progress(count, None, text)
        if self._wanted:
            self.sent += 1


TABLE: dict[ToolName, ToolDecl[Any]] = {
    "chat": ToolDecl(
        "Send a conversation (or a single prompt) to an LLM and return its reply. The provider and "
        "model are chosen by name, by model, or by the configured default; the result says which.",
        ChatInput, ChatOutput, "chat", _chat),
    "chatStream": ToolDecl(
        "Like chat, but each piece of text is sent as an MCP progress notification as soon as the "
        "provider produces it (pass a progressToken). The result carries the full text and usage, "
        "`chunks` (deltas received) and `notifications` (progress notifications sent).",
        ChatInput, ChatOutput, "chatStream", _chat_stream),
    "embed": ToolDecl(
        "Turn one text or a list of texts into embedding vectors.",
        EmbedInput, EmbedOutput, "embed", _embed),
    "getHealth": ToolDecl(
        "Report the gateway's status and, per provider worker, whether it is up, its last heartbeat "
        "age, capabilities, models (with their features) and last error class.",
        HealthInput, HealthOutput, None, _health),
    "listModels": ToolDecl(
        "List the models this client may use: per model its provider and kind, the tools it serves "
        "(capabilities), what it can do beyond plain text (features: vision, json_schema, tools, reasoning) "
        "and where that came from, context length, max output, whether it is loaded, and its priority. "
        "Filter by capability, feature or provider.",
        ListModelsInput, ListModelsOutput, None, _list_models),
    "threads": ToolDecl(
        "List your conversation threads (chat and chatStream with thread \"new\" or thread_id): per thread its "
        "id, when it was created and last used, turns and tokens kept, models that answered and when it "
        "expires; or delete one (action \"delete\" with thread_id). Messages are never shown.",
        ThreadsInput, ThreadsOutput, None, _threads, destructive=True),
}
if tuple(TABLE) != TOOL_NAMES:  # one entry per shared name, in the shared order
    raise RuntimeError(f"gateway.tool_table lists {tuple(TABLE)}, shared.tool_names {TOOL_NAMES}")

# What tools/list answers, built once.
TOOL_LIST = [
    types.Tool(
        name=name,
        description=decl.description,
        input_schema=decl.input.model_json_schema(),
        output_schema=output_schema(decl.output),
        annotations=types.ToolAnnotations(read_only_hint=not decl.calls_provider and not decl.destructive,
                                          destructive_hint=True if decl.destructive else None,
                                          open_world_hint=decl.calls_provider),
    )
    for name, decl in TABLE.items()
]
PARAM_HEADER_SCHEMAS = {t.name: param_header_schema(t.input_schema) for t in TOOL_LIST}
INSTRUCTIONS = f"{describe_tools()} across configured LLM providers."

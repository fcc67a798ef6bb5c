"""Installing the Tasks extension on the gateway's low-level SDK server.

The low-level ``Server`` has no extension list (that is ``MCPServer``'s), so this does by
hand what ``MCPServer._apply_extension`` does: advertise the identifier under
``capabilities.extensions`` and register the extension's request methods. The ``tools/call``
side (answering with a task) is ``task_call``, which ``gateway.mcp_server`` calls.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from pydantic import ValidationError

from gateway.service import GatewayService
from gateway.tasks.methods import LOCAL_CLIENT, ClientLookup, TaskMethods
from gateway.tasks.policy import asked_for_task, declared, wants_task
from gateway.tasks.runner import Call, TaskRunner
from gateway.tasks.wire import EXTENSION
from gateway.tool_table import ToolDecl

__all__ = ["install_tasks", "task_call"]


def install_tasks(server: Server[Any], runner: TaskRunner, client_lookup: ClientLookup) -> None:
    """Advertise the extension and serve ``tasks/get``, ``tasks/cancel``, ``tasks/update``."""
    server.extensions[EXTENSION] = {}
    for method, params_type, handler in TaskMethods(runner, client_lookup).bindings():
        server.add_request_handler(method, params_type, handler)


def _default_timeout(service: GatewayService) -> Any:
    providers = service.providers.providers

    def timeout(provider: str | None) -> float:
        if provider in providers:
            return providers[provider].timeouts.total_s
        return max((p.timeouts.total_s for p in providers.values()), default=0.0)

    return timeout


async def task_call(
    runner: TaskRunner | None, service: GatewayService, ctx: ServerRequestContext[Any],
    tool: str, decl: ToolDecl[Any], arguments: dict[str, Any], client: str | None, call: Call,
) -> dict[str, Any] | types.CallToolResult | None:
    """Run ``call`` as a task: its ``CreateTaskResult``, or its plain result if it ended within the
    inline window (``LLMC_TASK_INLINE_S``); None: not a task call, run it as a plain call."""
    if runner is None or not decl.calls_provider or not runner.available:
        return None
    if not declared(ctx.protocol_version, ctx.session.client_capabilities):
        return None
    try:
        args = decl.input.model_validate(arguments)
    except ValidationError:
        return None  # the plain path answers with the clear error at once
    if not wants_task(args, ctx.meta, runner.settings.task_after_s, _default_timeout(service)):
        return None
    # Asked for explicitly: a task at once. Else the immediate-result shortcut: wait a little first.
    inline_s = 0.0 if asked_for_task(ctx.meta) else runner.settings.task_inline_s
    return await runner.start_within(client if client is not None else LOCAL_CLIENT, tool, call, inline_s)

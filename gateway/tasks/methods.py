"""``tasks/get``, ``tasks/cancel`` and ``tasks/update``: checks first, then one store call each.

Every request is checked in this order: it declares the extension (else -32021); over HTTP
its ``Mcp-Name`` header is the ``taskId`` (else -32020, header mismatch); its caller is the
task's client (the client id of the bearer token, as ``tools/call`` uses). Unknown, expired
and other clients' ids get the same -32602 answer, so a client cannot probe for another's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from pydantic import Field

from gateway.store.base import Store
from gateway.tasks.policy import declared
from gateway.tasks.runner import TaskRunner
from gateway.tasks.wire import missing_capability, not_found, task_view
from shared import errors
from shared.config import ClientEntry

__all__ = ["CancelParams", "GetParams", "TaskMethods", "UpdateParams"]

Context = ServerRequestContext[Any]
ClientLookup = Callable[[str], ClientEntry | None]
# Who a request comes from when no HTTP auth ran (in-process transports): the transport vouched.
LOCAL_CLIENT = ""


class GetParams(types.RequestParams):
    task_id: str = Field(alias="taskId", min_length=1, max_length=200)


class CancelParams(GetParams):
    pass


class UpdateParams(GetParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses", default_factory=dict)


def caller(ctx: Context, client_lookup: ClientLookup) -> str:
    """The client id this request authenticated as; a client gone from the registry finds no task."""
    token = get_access_token()
    if token is None:
        return LOCAL_CLIENT
    if client_lookup(token.client_id) is None:
        raise not_found()
    return token.client_id


def _check(ctx: Context, task_id: str) -> None:
    if not declared(ctx.protocol_version, ctx.session.client_capabilities):
        raise missing_capability()
    headers = getattr(ctx.request, "headers", None)
    if headers is not None and decode_header_value(headers.get(MCP_NAME_HEADER)) != task_id:
        raise MCPError(types.HEADER_MISMATCH, f"{MCP_NAME_HEADER} header must equal params.taskId on tasks/*")


class TaskMethods:
    """The three handlers, bound to one runner and the client registry."""

    def __init__(self, runner: TaskRunner, client_lookup: ClientLookup) -> None:
        self.runner = runner
        self.client_lookup = client_lookup

    def bindings(self) -> list[tuple[str, type[types.RequestParams], Callable[[Context, Any], Awaitable[Any]]]]:
        return [("tasks/get", GetParams, self.get), ("tasks/cancel", CancelParams, self.cancel),
                ("tasks/update", UpdateParams, self.update)]

    def _store(self) -> Store:
        try:
            return self.runner.slot.get()
        except errors.Unavailable as exc:
            raise MCPError(types.INTERNAL_ERROR, str(exc)) from None

    async def get(self, ctx: Context, params: GetParams) -> dict[str, Any]:
        _check(ctx, params.task_id)
        client = caller(ctx, self.client_lookup)
        row = await self._store().get_task(params.task_id, client, self.runner.clock())
        if row is None:
            raise not_found()
        return task_view(row)

    async def cancel(self, ctx: Context, params: CancelParams) -> dict[str, Any]:
        """Flag the task; if this gateway runs it, cancel the call now (others poll for the flag)."""
        _check(ctx, params.task_id)
        client = caller(ctx, self.client_lookup)
        row = await self._store().request_cancel(params.task_id, client, self.runner.clock())
        if row is None:
            raise not_found()
        if not row.terminal:
            self.runner.cancel_local(row.task_id)
        return {"resultType": "complete"}

    async def update(self, ctx: Context, params: UpdateParams) -> dict[str, Any]:
        """Acknowledge: these tasks never ask for input, so every response is for no outstanding key."""
        _check(ctx, params.task_id)
        client = caller(ctx, self.client_lookup)
        if await self._store().get_task(params.task_id, client, self.runner.clock()) is None:
            raise not_found()
        return {"resultType": "complete"}

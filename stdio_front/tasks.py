"""MCP Tasks through the STDIO front end: relayed to the gateway, never decided here.

The gateway alone decides whether a ``tools/call`` becomes a task, and only for a request
that declares the extension (``io.modelcontextprotocol/tasks``) in its own client
capabilities. So the front end keeps two upstream clients: the plain one, and one that
declares the extension; a call goes through the second only when the STDIO client's
request declared it. A ``CreateTaskResult`` comes back as it is, and ``tasks/get``,
``tasks/cancel`` and ``tasks/update`` are forwarded as they are (with ``Mcp-Name`` set to the
task id, which the gateway checks over HTTP). The gateway's answers, errors included
(-32602 for an unknown id), pass through unchanged; a request that did not declare the
extension gets -32021 here, as from the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import mcp_types as types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

__all__ = ["EXTENSION", "Passthrough", "TaskAnswer", "TaskRelayExtension", "declared", "install_task_relay"]

EXTENSION = "io.modelcontextprotocol/tasks"
HINT_KEY = "llm-caller/task"  # the gateway's own "make this a task" hint, passed on as the client sent it
Context = ServerRequestContext[Any]


class Passthrough(types.Result):
    """Any result, every field kept: what the gateway answered, handed on unchanged."""

    model_config = ConfigDict(extra="allow")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class TaskAnswer(Passthrough):
    """A ``tools/call`` answered with a task (``CreateTaskResult``), every field kept."""

    result_type: Literal["task"] = Field(alias="resultType")


class TaskRelayExtension(ClientExtension):
    """Declares the extension upstream; a task answer is returned to the caller, never polled here."""

    identifier = EXTENSION

    def claims(self) -> tuple[ResultClaim[Any], ...]:
        return (ResultClaim(result_type="task", model=TaskAnswer, resolve=_not_resolved_here),)


async def _not_resolved_here(handle: TaskAnswer, ctx: ClaimContext) -> types.CallToolResult:
    raise RuntimeError("the STDIO front end hands task answers on (allow_claimed); it never polls them")


def declared(ctx: Context) -> bool:
    """True when this STDIO request lists the extension in its client capabilities (2026 protocol only)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    extensions = getattr(ctx.session.client_capabilities, "extensions", None)
    return isinstance(extensions, Mapping) and EXTENSION in extensions


def hint(ctx: Context) -> dict[str, Any] | None:
    """The ``_meta`` to pass upstream: only our hint, when the STDIO client sent it."""
    return {HINT_KEY: True} if (ctx.meta or {}).get(HINT_KEY) is True else None


class _IdParams(types.RequestParams):
    model_config = ConfigDict(extra="allow")

    task_id: str


class _Get(types.Request[_IdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class _Cancel(types.Request[_IdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class _Update(types.Request[_IdParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


_REQUESTS: dict[str, type[_Get | _Cancel | _Update]] = {"tasks/get": _Get, "tasks/cancel": _Cancel,
                                                         "tasks/update": _Update}
# Sends one request through the declaring upstream client; the gateway's answer, unchanged.
Send = Callable[[types.Request[Any, Any]], Awaitable[Passthrough]]


def install_task_relay(server: Server[Any], send: Send) -> None:
    """Advertise the extension on the STDIO server and forward ``tasks/*`` through ``send``."""
    server.extensions[EXTENSION] = {}
    for method, request_type in _REQUESTS.items():
        server.add_request_handler(method, _IdParams, _relay(request_type, send))


def _relay(request_type: type[_Get | _Cancel | _Update], send: Send) -> Callable[[Context, _IdParams],
                                                                               Awaitable[dict[str, Any]]]:
    async def handle(ctx: Context, params: _IdParams) -> dict[str, Any]:
        if not declared(ctx):
            raise MCPError(types.MISSING_REQUIRED_CLIENT_CAPABILITY, "Missing required client capability",
                           {"requiredCapabilities": {"extensions": {EXTENSION: {}}}})
        forwarded = _IdParams.model_validate(params.model_dump(by_alias=True, exclude={"meta"}))
        answer = await send(request_type(params=forwarded))
        return answer.wire()

    return handle

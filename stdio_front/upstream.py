"""The STDIO front end's side of the HTTP gateway: one long-lived MCP client, replaced when it breaks.

Every ``tools/call`` the STDIO client makes is forwarded through the same SDK ``Client``.
A fresh client per call (how this started) paid ~28 ms each time: a ``tools/list`` round
trip and the SDK checking and compiling the tool's output schema before it could validate
the result, so a chat took 34 ms over STDIO against 6-7 ms over HTTP.

An SDK client lives inside a task group, which must be entered and left by one task; so the
client is held open by a task of its own (``_hold``) in the front end's task group, and
handlers borrow it. A transport failure ends that client (its task group fails); the call
that saw it is answered "gateway unreachable", and the next call opens a new client. The
gateway is stateless-capable, so a client survives a gateway restart by itself.

The SDK client runs each progress callback as a task of its own, so a call can return
while the relay of its last notifications is still to run; ``_Relays`` makes the call
wait for them, so the STDIO client never gets a result before the progress it follows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar, cast

import anyio
import anyio.abc
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from shared import errors
from shared.front_contract import error_result
from shared.logs import log_event
from stdio_front.credential import Credential
from stdio_front.tasks import Passthrough, TaskRelayExtension, declared, hint

__all__ = ["GatewayRefused", "GatewayUnreachable", "Upstream"]

log = logging.getLogger("stdio")
T = TypeVar("T")

# The gateway is stateless-capable: each forwarded call is one self-contained request.
_PROTOCOL = max(MODERN_PROTOCOL_VERSIONS)


class GatewayRefused(Exception):
    """The gateway answered 401/429 to a forwarded request; ``str()`` is its reason."""


class GatewayUnreachable(Exception):
    """The forwarded request never got an answer (connection refused, reset, ...)."""


class _Held:
    """One open SDK client and the task holding it."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.ready = anyio.Event()  # set once the client is open, or failed to open
        self.closed = anyio.Event()  # set to let it go; set by the holder when it ended
        self.problem: BaseException | None = None


class _Relays:
    """Progress relays of one call still running; ``settled`` returns once there are none."""

    def __init__(self) -> None:
        self._running = 0
        self._idle = anyio.Event()
        self._idle.set()

    def started(self) -> None:
        if self._running == 0:
            self._idle = anyio.Event()
        self._running += 1

    def finished(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._idle.set()

    async def settled(self) -> None:
        # The SDK starts a callback's task as the notification arrives, before the result
        # wakes the call, so every relay has started (and counted itself) by now.
        await self._idle.wait()


class Upstream:
    """The gateway's MCP endpoint, through one client held open by a task in ``tasks``."""

    def __init__(self, gateway: str, credential: Credential, http: httpx2.AsyncClient,
                 tasks: anyio.abc.TaskGroup) -> None:
        self.url = f"{gateway}/mcp"
        self._credential = credential
        self._http = http
        self._tasks = tasks
        # Two clients: the plain one, and one declaring the Tasks extension (``stdio_front.tasks``).
        self._held: dict[bool, _Held] = {}
        self._opening = anyio.Lock()

    async def list_tools(self) -> types.ListToolsResult:
        try:
            return await self._forward(lambda client: client.list_tools())
        except GatewayRefused as exc:
            raise MCPError(types.INVALID_REQUEST, f"the gateway refused this client: {exc}") from None
        except GatewayUnreachable as exc:
            raise MCPError(types.INTERNAL_ERROR, str(exc)) from None

    async def send_task_request(self, request: types.Request[Any, Any]) -> Passthrough:
        """One ``tasks/*`` request through the declaring client; the gateway's answer as it is."""
        try:
            return await self._forward(lambda client: client.session.send_request(request, Passthrough), tasks=True)
        except GatewayRefused as exc:
            raise MCPError(types.INVALID_REQUEST, f"the gateway refused this client: {exc}") from None
        except GatewayUnreachable as exc:
            raise MCPError(types.INTERNAL_ERROR, str(exc)) from None

    async def call_tool(self, ctx: ServerRequestContext[Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult | dict[str, Any]:
        """Forward one call; a ``CreateTaskResult`` (a dict) when the gateway answered with a task."""
        relays = _Relays()

        async def relay(progress: float, total: float | None, message: str | None) -> None:
            relays.started()
            try:
                await ctx.session.report_progress(progress, total, message)  # a no-op without a progressToken
            finally:
                relays.finished()

        # Ask the gateway for progress only when our client asked us: then the result's
        # `notifications` counts what reached the client.
        wanted = (ctx.meta or {}).get("progress_token") is not None
        tasks = declared(ctx)  # only then may the gateway answer with a task
        progress = relay if wanted else None
        try:
            if tasks:  # the answer may be a task handle: handed on as the gateway sent it
                answer = await self._forward(lambda client: client.session.call_tool(
                    params.name, params.arguments, progress_callback=progress, meta=hint(ctx),  # type: ignore[arg-type]
                    allow_claimed=True), tasks=True)
                await relays.settled()
                return answer.wire() if isinstance(answer, Passthrough) else cast(types.CallToolResult, answer)
            result = await self._forward(lambda client: client.call_tool(
                params.name, params.arguments, progress_callback=progress))
            await relays.settled()
            return result
        except GatewayRefused as exc:
            return error_result(errors.AuthError(f"the gateway refused this client: {exc}"))
        except GatewayUnreachable as exc:
            return error_result(errors.Unavailable(str(exc), retry_after_s=1))
        except MCPError:
            raise  # the gateway's own JSON-RPC error (e.g. an unknown tool), passed on as it is
        except Exception as exc:  # e.g. a result the SDK client could not validate
            log_event(log, "forward_failed", level=logging.ERROR, problem=type(exc).__name__)
            return error_result(errors.InternalError("the STDIO front end failed to relay this call; "
                                                     "its stderr has the error class"))

    def close(self) -> None:
        """Let the held clients go (the front end is stopping)."""
        for held in self._held.values():
            held.closed.set()

    # ---- the held client --------------------------------------------------------------

    async def _forward(self, operation: Callable[[Client], Awaitable[T]], tasks: bool = False) -> T:
        """Run ``operation`` on a held client (``tasks``: the one declaring the extension).

        A JSON-RPC error from the gateway is re-raised as it is."""
        held = await self._borrow(tasks)
        client = held.client
        if client is None:
            self._unreachable(held)
        try:
            return await operation(client)
        except MCPError as exc:
            if self._credential.last_refusal is not None:
                raise GatewayRefused(self._credential.last_refusal) from None
            if exc.code != types.CONNECTION_CLOSED:
                raise
            held.closed.set()
            raise GatewayUnreachable(f"the connection to the gateway at {self.url} was lost; is it running?") from None
        except Exception as exc:
            if not _transport_trouble(exc):
                raise
            held.closed.set()
            log_event(log, "gateway_unreachable", level=logging.WARNING, problem=type(exc).__name__)
            raise GatewayUnreachable(f"the gateway at {self.url} is not reachable; is it running?") from None

    def _unreachable(self, held: _Held) -> NoReturn:
        problem = type(held.problem).__name__ if held.problem is not None else "closed"
        log_event(log, "gateway_unreachable", level=logging.WARNING, problem=problem)
        raise GatewayUnreachable(f"the gateway at {self.url} is not reachable; is it running?")

    async def _borrow(self, tasks: bool) -> _Held:
        async with self._opening:
            held = self._held.get(tasks)
            if held is None or held.closed.is_set():
                held = self._held[tasks] = _Held()
                self._tasks.start_soon(self._hold, held, tasks)
                await held.ready.wait()
            return held

    async def _hold(self, held: _Held, tasks: bool) -> None:
        extensions = [TaskRelayExtension()] if tasks else None
        try:
            async with Client(streamable_http_client(self.url, http_client=self._http), mode=_PROTOCOL,
                              cache=None, extensions=extensions) as client:
                held.client = client
                held.ready.set()
                await held.closed.wait()
        except Exception as exc:  # a transport failure ended the client's task group
            held.problem = exc
            if not _transport_trouble(exc):
                log_event(log, "upstream_client_failed", level=logging.ERROR, problem=type(exc).__name__)
        finally:
            held.client = None
            held.closed.set()
            held.ready.set()


def _transport_trouble(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_transport_trouble(inner) for inner in exc.exceptions)
    return isinstance(exc, httpx2.HTTPError | OSError) or (
        isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED)

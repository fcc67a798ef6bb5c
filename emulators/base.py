"""What every emulator shares: the control API, request bookkeeping and fault dispatch.

Each API request goes through :meth:`Emulator.endpoint`: read the body, count the
request, take a fault from the queue, and either let the fault answer (status, drop,
echo, non-stream malformed, html, close mid-headers) or hand over to the provider's handler (after a delay
fault, if any). Handlers signal API errors by raising :class:`ApiError`; the provider
renders it in its own error shape.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators.faults import FaultQueue, FaultsBody, FaultSpec, RequestStats, key_in_form
from emulators.streams import StreamPlan, play
from emulators.wire import DropConnection, EmulatorStarlette, EventStream, json_response, wait_for_disconnect
from shared.timeline import mark

__all__ = ["ALL_METHODS", "ApiError", "Call", "Emulator", "Handler", "bearer_token", "control_error", "new_id"]

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# A body that starts like a real completion and stops mid-object: the ``malformed`` fault.
_BROKEN_JSON = b'{"id": "emulated-broken", "object": "chat.completion", "choices": [{"index": 0, "mess'
# What a proxy, captive portal or wrong base URL answers: an HTML page (the ``html`` fault).
_HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Gateway</title></head>\n"
              b"<body><h1>Please sign in to continue</h1></body></html>\n")
# A status line and part of the headers, with no blank line to end them (``close_mid_headers``).
_PARTIAL_HEADERS = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-co"


class ApiError(Exception):
    """An API error, provider-neutral; each emulator renders it in its own wire shape."""

    def __init__(
        self, status: int, type: str, message: str, *, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.code, self.param = status, type, message, code, param


@dataclass(slots=True)
class Call:
    """One API request as the handlers see it."""

    request: Request
    path: str
    raw_body: bytes
    body: Any  # the parsed JSON body; None when empty or not JSON
    stream: bool
    fault: FaultSpec | None
    request_id: str

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or the 400 every provider gives for anything else."""
        if not isinstance(self.body, dict):
            raise ApiError(400, "invalid_request_error", "The request body is not a valid JSON object.")
        return self.body


Handler = Callable[[Call], Awaitable[Response]]


def new_id(prefix: str, nbytes: int = 12) -> str:
    return prefix + os.urandom(nbytes).hex()


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class Emulator(abc.ABC):
    """Base of the provider emulators; ``self.app`` is the Starlette app to serve."""

    provider: ClassVar[str]  # the provider kind it imitates, e.g. "openai" (its key in emulators.registry)
    label: ClassVar[str]  # how the reply text names the provider
    # Whether the constructor's first argument is the one API key it accepts (None: any key).
    # False for servers that run without keys; emulators.registry.build_emulator reads it.
    accepts_key: ClassVar[bool] = True

    def __init__(self, api_key: str | None = None, *, chunk_delay_s: float = 0.0) -> None:
        # The one key accepted; None accepts any non-empty key (auth is then only "is a key present").
        self.api_key = api_key
        self.chunk_delay_s = chunk_delay_s
        self.faults = FaultQueue()
        self.stats = RequestStats()
        # Set on shutdown so deliberately silent streams and delays end at once.
        self.closing = asyncio.Event()
        catch_all = Route("/{path:path}", self.endpoint(self.unknown_path), methods=ALL_METHODS)
        self.app = EmulatorStarlette(routes=[*self._control_routes(), *self.api_routes(), catch_all])

    # ---- what each provider supplies -------------------------------------------------

    @abc.abstractmethod
    def api_routes(self) -> list[BaseRoute]: ...

    @abc.abstractmethod
    async def unknown_path(self, call: Call) -> Response: ...

    @abc.abstractmethod
    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        """The provider's error body and headers for ``error``."""

    @abc.abstractmethod
    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        """The realistic default error for a ``status`` fault (``code`` is the spec's error_code)."""

    @abc.abstractmethod
    def echo_key_error(self, key: str, status: int) -> ApiError:
        """An auth-style error whose message quotes the presented key."""

    @abc.abstractmethod
    def presented_key(self, request: Request) -> str | None: ...

    def response_headers(self, call: Call) -> dict[str, str]:
        """Headers the real API puts on every response (request id, rate limits...)."""
        return {}

    def is_stream(self, path: str, body: Any) -> bool:
        """Whether a request asks for a stream (stream-only faults apply only then).

        Most APIs say so in the body (``"stream": true``); one that streams on its own
        endpoint (Gemini's ``:streamGenerateContent``) overrides this to read the path.
        """
        return isinstance(body, dict) and body.get("stream") is True

    # ---- request flow ---------------------------------------------------------------

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            mark("provider.request_in")
            call = await self._begin(request)
            if call.fault is not None:
                early = await self._apply_fault(call, call.fault)
                if early is not None:
                    return early
            try:
                return await handler(call)
            except ApiError as error:
                return self.render_error(call, error)

        return run

    async def _begin(self, request: Request) -> Call:
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
        path: str = request.scope["path"]  # not request.url: that builds a whole URL object
        stream = self.is_stream(path, body)
        self.stats.record(path, request.headers, body)
        fault = self.faults.take(path, stream)
        if fault is not None:
            self.stats.record_fault(path, fault)
        return Call(request, path, raw, body, stream, fault, new_id("req_", 16))

    async def _apply_fault(self, call: Call, fault: FaultSpec) -> Response | None:
        """Answer for the fault, or None to carry on with normal handling."""
        if fault.mode == "drop":
            return DropConnection()
        if fault.mode == "close_mid_headers":
            return DropConnection(_PARTIAL_HEADERS)
        if fault.mode == "html":
            return Response(_HTML_PAGE, fault.status or 200, media_type="text/html")
        if fault.mode == "delay":
            await self._pause(call.request, 1.0 if fault.delay_s is None else fault.delay_s)
            return None
        if fault.mode == "malformed" and not call.stream:
            return Response(_BROKEN_JSON, 200, self.response_headers(call), media_type="application/json")
        if fault.mode in ("status", "echo_key_in_error"):
            return self.render_error(call, self._fault_error(call, fault), fault.headers)
        return None  # stream modes are applied while streaming

    def _fault_error(self, call: Call, fault: FaultSpec) -> ApiError:
        if fault.mode == "echo_key_in_error":
            key = self.presented_key(call.request)
            error = self.echo_key_error(key_in_form(key, fault.key_form) if key else "(none)", fault.status or 401)
        else:
            error = self.status_fault_error(fault.status or 500, fault.error_code)
        return ApiError(
            error.status,
            fault.error_type or error.type,
            fault.message if fault.message is not None and fault.mode == "status" else error.message,
            code=fault.error_code or error.code,
            param=error.param,
        )

    async def _pause(self, request: Request, seconds: float) -> None:
        """Sleep, but stop early if the client leaves or the emulator shuts down."""
        watchers = {
            asyncio.ensure_future(wait_for_disconnect(request.receive)),
            asyncio.ensure_future(self.closing.wait()),
        }
        try:
            await asyncio.wait(watchers, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in watchers:
                task.cancel()

    def event_stream(self, call: Call, plan: StreamPlan) -> EventStream:
        frames = play(plan, call.fault, self.chunk_delay_s)
        on_left = self.stats.record_left if self.chunk_delay_s > 0 else None
        return EventStream(frames, self.response_headers(call), self.closing, on_left)

    # ---- control API (never authenticated, never counted, never faulted) --------------

    def _control_routes(self) -> list[BaseRoute]:
        return [
            Route("/_emulator/faults", self._add_faults, methods=["POST"]),
            Route("/_emulator/faults", self._list_faults, methods=["GET"]),
            Route("/_emulator/faults", self._clear_faults, methods=["DELETE"]),
            Route("/_emulator/stats", self._get_stats, methods=["GET"]),
            Route("/_emulator/stats", self._reset_stats, methods=["DELETE"]),
            Route("/_emulator/health", self._health, methods=["GET"]),
            *self.extra_control_routes(),
        ]

    def extra_control_routes(self) -> list[BaseRoute]:
        return []

    async def _add_faults(self, request: Request) -> Response:
        try:
            body = FaultsBody.model_validate_json(await request.body())
        except ValidationError as exc:
            return control_error(exc)
        self.faults.add(body.faults)
        return json_response({"queued": len(self.faults)})

    async def _list_faults(self, request: Request) -> Response:
        return json_response({"faults": self.faults.pending()})

    async def _clear_faults(self, request: Request) -> Response:
        return json_response({"cleared": self.faults.clear()})

    async def _get_stats(self, request: Request) -> Response:
        return json_response(self.stats.snapshot())

    async def _reset_stats(self, request: Request) -> Response:
        self.stats.reset()
        return json_response({"reset": True})

    async def _health(self, request: Request) -> Response:
        return json_response({"ok": True, "provider": self.provider})


def control_error(exc: ValidationError) -> Response:
    """A control call with a bad body: 400 with pydantic's own, readable, error list."""
    details = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
    return json_response({"error": "invalid control request", "details": details}, 400)

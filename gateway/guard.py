"""The front door: a pure ASGI middleware in front of the SDK's MCP app.

In order, for every HTTP request (cheapest checks first, so junk costs little):

1. ``Host`` must name this gateway with its port (else 421) and an ``Origin``, when
   sent, must be this gateway's own (else 403): DNS-rebinding and cross-site browser
   requests stop here, on every path. The SDK applies the same lists again on ``/mcp``.
2. A declared ``Content-Length`` over ``LLMC_MAX_BODY_BYTES`` gets 413 before a byte is
   read (a chunked body is cut off by the SDK's own limit, or ``/session``'s).
3. On the authenticated paths (``/mcp``, ``/session``): the bearer credential is checked
   once (``gateway.access``). A valid credential of an enabled client goes through,
   whatever other callers have been doing. A failure is a 401 whose ``WWW-Authenticate``
   carries an ``error_description`` saying what is wrong (unknown, disabled, expired,
   wrong transport...) and how to get a token; or, for a credential that names no client
   from a source that failed too often, a 429 with ``Retry-After``.

The 401 names no ``resource_metadata``: this gateway is not an OAuth authorization
server and does not pretend to be one (tokens come from ``llm-caller clients add``), so
there is no metadata a client could follow anywhere useful. OAuth discovery probes get a
JSON 404 that says so (``gateway.no_oauth``). Decision recorded as D13 (revised).

The request's transport is ``http`` unless the STDIO front end declares
``X-LLMC-Transport: stdio``; a session token must be bound to that transport.
Decisions D12 (STDIO) and D13 (lockout) say why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access import AccessControl, Source
from gateway.auth import AuthResult
from shared.front_contract import TRANSPORT_HEADER
from shared.session_tokens import Transport
from shared.timeline import enabled as timeline_enabled
from shared.timeline import mark

__all__ = ["NO_CREDENTIAL", "TRANSPORT_HEADER", "SecurityGuard"]

log = logging.getLogger("gateway.guard")

NO_CREDENTIAL = ("authentication required: send Authorization: Bearer <client token>; the operator creates "
                 "a client token with `llm-caller clients add NAME`")
_SESSION_ID = b"mcp-session-id"


class SecurityGuard:
    def __init__(self, app: ASGIApp, access: AccessControl, *, hosts: Collection[str], origins: Collection[str],
                 max_body_bytes: int, auth_paths: Collection[str], mcp_path: str) -> None:
        self.app = app
        self.access = access
        self._hosts = frozenset(hosts)
        self._origins = frozenset(origins)
        self._max_body = max_body_bytes
        self._auth_paths = frozenset(auth_paths)
        self._mcp_path = mcp_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        scope["headers"] = _trim_header_values(scope["headers"])
        headers = Headers(scope=scope)
        refusal = self._screen(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
        elif scope["path"] in self._auth_paths:
            await self._serve_authenticated(scope, receive, send, headers)
        else:
            await self.app(scope, receive, send)

    def _screen(self, headers: Headers) -> Response | None:
        if headers.get("host") not in self._hosts:
            return PlainTextResponse("Invalid Host header", status_code=421)
        origin = headers.get("origin")
        if origin is not None and origin not in self._origins:
            return PlainTextResponse("Invalid Origin header", status_code=403)
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            return PlainTextResponse("Invalid Content-Length header", status_code=400)
        if length is not None and int(length) > self._max_body:
            return PlainTextResponse("Request body too large", status_code=413)
        return None

    async def _serve_authenticated(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        mark("gateway.http_in")
        verdict = self._admit(scope, headers)
        if isinstance(verdict, Response):
            await verdict(scope, receive, send)
            return
        credential, result, source = verdict
        mark("gateway.authed")
        handle = self.access.verifier.publish(credential, result)
        try:
            send = self._watch(scope, headers, send, result, source)
            await self.app(scope, receive, _marking_body(send) if timeline_enabled() else send)
        finally:
            self.access.verifier.unpublish(handle)

    def _admit(self, scope: Scope, headers: Headers) -> Response | tuple[str, AuthResult, Source]:
        """The refusal to send, or the credential with its successful verdict."""
        credential = _bearer(headers)
        transport = _transport(headers.get(TRANSPORT_HEADER, "http").lower())
        if transport is None:
            return PlainTextResponse("X-LLMC-Transport must be http or stdio", status_code=400)
        source = self.access.source(scope.get("client"))
        if credential is None:
            return _challenge(NO_CREDENTIAL)
        try:
            result, wait = self.access.check(credential, transport, source)
        except Exception:  # a bug here must not become a 500 with a traceback, nor let anyone in
            log.exception("auth_check_crashed")
            return PlainTextResponse("authentication is unavailable; the error was logged", status_code=503)
        if result.ok:
            return credential, result, source
        return _too_many(wait) if wait is not None else _challenge(result.description)

    def _watch(self, scope: Scope, headers: Headers, send: Send, result: AuthResult, source: Source) -> Send:
        """Audit each new 2025-11-25 session: a 200 that hands out an Mcp-Session-Id the request lacked."""
        if scope["path"] != self._mcp_path or scope["method"] != "POST" or "mcp-session-id" in headers:
            return send

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200 and any(
                    name.lower() == _SESSION_ID for name, _ in message.get("headers", [])):
                self.access.session_opened(result, source)
            await send(message)

        return watching


# JSON-RPC's range for implementation-defined server errors; MCP SDK clients raise the body's
# error as an MCPError carrying our message, where any other body becomes "Server returned an
# error response" and the reason is lost to the person reading it.
UNAUTHORIZED_CODE = -32001
TOO_MANY_FAILURES_CODE = -32002


def _refusal(status: int, code: int, reason: str, message: str, headers: dict[str, str],
             **extra: object) -> Response:
    """A refusal before MCP: a JSON-RPC error (what SDK clients show) plus OAuth-style fields.

    ``error.data.reason`` is the machine-readable cause (``invalid_token``, ``too_many_failures``);
    ``error_description`` at the top level is the same sentence for OAuth-minded readers.
    """
    error = {"code": code, "message": message, "data": {"reason": reason, **extra}}
    body = {"jsonrpc": "2.0", "id": None, "error": error, "error_description": message}
    return JSONResponse(body, status_code=status, headers=headers)


def _challenge(description: str) -> Response:
    """401 with an RFC 6750 §3 challenge; the same sentence in the JSON body, where clients show it."""
    text = description.replace('"', "'").replace("\\", "/")
    return _refusal(401, UNAUTHORIZED_CODE, "invalid_token", description,
                    {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{text}"'})


def _marking_body(send: Send) -> Send:
    """``send`` that records when the response body goes out (``shared.timeline``; off by default)."""
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body":
            mark("gateway.http_out")
        await send(message)

    return sending


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def _too_many(wait_s: float) -> Response:
    seconds = max(1, math.ceil(wait_s))
    description = f"too many failed authentication attempts from this source; retry in {seconds} s"
    return _refusal(429, TOO_MANY_FAILURES_CODE, "too_many_failures", description, {"Retry-After": str(seconds)},
                    retry_after_s=seconds)


def _transport(value: str) -> Transport | None:
    return "stdio" if value == "stdio" else "http" if value == "http" else None


_OWS = b" \t"


def _trim_header_values(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Strip optional whitespace around header values (RFC 9110 §5.5: it is not part of the value).

    h11 does this while parsing; httptools, which we run for speed, does not, and the SDK
    compares MCP's Mcp-Name / Mcp-Method headers to the body byte for byte.
    """
    if all(value[:1] not in (b" ", b"\t") and value[-1:] not in (b" ", b"\t") for _, value in raw):
        return raw  # the common case: nothing to copy
    return [(name, value.strip(_OWS)) for name, value in raw]

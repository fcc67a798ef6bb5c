"""``/session``: exchange a client token for a short-lived session token, or describe a credential.

``POST /session`` with ``Authorization: Bearer <client token>`` and a JSON body
``{"transport": "http"|"stdio", "ttl_s": 900}`` (both optional) answers
``{"session_token", "token_type", "expires_at", "transport", "client_id"}``. A session
token cannot be exchanged for another: renewal needs the client token, so a leaked
session token dies on schedule. ``GET /session`` answers ``{"client_id", "transport",
"credential", "expires_at"}`` for whatever credential was presented: the STDIO front end
uses it to check a session token before it serves anything.

Authentication, lockout and the 401s happen in ``gateway.guard`` before these handlers
run; they read the verdict with ``gateway.auth.current_auth``.

The signing key lives in ``LLMC_SESSION_KEY_FILE`` (default ``$LLMC_RUN_DIR/session.key``).
The default file is created here, 0600 inside the 0700 run folder, when it is missing,
and kept across restarts so session tokens survive ``llm-caller down``/``up``. A key that
cannot be read (too open, malformed, an explicit path that does not exist) disables
session tokens with an error in the log; client tokens keep working.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import cast

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.access import AccessControl
from gateway.auth import binding_of, current_auth
from shared.link_auth import KeyFileError
from shared.logs import log_event
from shared.session_tokens import (
    MAX_TTL_S,
    SESSION_KEY_BYTES,
    Transport,
    issue_session_token,
    load_session_key,
)
from shared.settings import Settings

__all__ = ["SESSION_PATH", "load_or_create_session_key", "session_routes"]

log = logging.getLogger("gateway.session")

SESSION_PATH = "/session"
DEFAULT_TTL_S = 900
_MAX_BODY = 4096  # two small fields; anything bigger is not a real exchange request
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1, for token responses
_UNAVAILABLE = "session tokens are unavailable on this gateway; the operator can see why in its log"


def load_or_create_session_key(settings: Settings) -> tuple[bytes | None, str]:
    """The signing key, or None and a client-safe reason (the full problem goes to the log)."""
    path = settings.session_key_file
    if settings.security.session_key_file is None:
        try:
            _create_key_file(path)
        except OSError as exc:
            log_event(log, "session_key_unavailable", level=logging.ERROR,
                      problem=f"cannot create {path} ({exc.strerror or exc})")
            return None, _UNAVAILABLE
    try:
        return load_session_key(path), ""
    except KeyFileError as exc:
        log_event(log, "session_key_unavailable", level=logging.ERROR, problem=str(exc))
        return None, _UNAVAILABLE


def _create_key_file(path: os.PathLike[str]) -> None:
    try:
        # O_EXCL: never overwrite a key (tokens signed with it would die) nor follow a planted link.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    try:
        os.write(fd, secrets.token_bytes(SESSION_KEY_BYTES).hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    log_event(log, "session_key_created", path=str(path))


def session_routes(access: AccessControl, settings: Settings) -> list[Route]:
    max_ttl = min(settings.security.session_max_ttl_s, MAX_TTL_S)

    async def exchange(request: Request) -> Response:
        return await _exchange(request, access, max_ttl)

    async def describe(request: Request) -> Response:
        return _describe()

    return [Route(SESSION_PATH, exchange, methods=["POST"]), Route(SESSION_PATH, describe, methods=["GET"])]


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=_NO_STORE)


def _describe() -> Response:
    result = current_auth()
    if result is None or result.access is None:  # the guard lets no such request through
        return _error(401, "invalid_token", "authentication required")
    return JSONResponse({"client_id": result.client_id, "transport": result.transport, "credential": result.kind,
                         "expires_at": result.access.expires_at}, headers=_NO_STORE)


async def _exchange(request: Request, access: AccessControl, max_ttl: int) -> Response:
    result = current_auth()
    if result is None or result.access is None or result.client_id is None:
        return _error(401, "invalid_token", "authentication required")
    if result.kind != "client_token":
        return _error(400, "invalid_grant", "a session token cannot be exchanged for another; "
                      "present the client token")
    key = access.verifier.session_key
    if key is None:
        return _error(503, "temporarily_unavailable", access.verifier.session_problem)
    try:
        transport, ttl_s = _parse(await _read_body(request), max_ttl)
    except ValueError as exc:
        status = 413 if isinstance(exc, _TooLarge) else 400
        return _error(status, "invalid_request", str(exc))
    entry = access.verifier.client(result.client_id)
    if entry is None:  # removed between the check and here: as good as a refusal
        return _error(401, "invalid_token", f"client '{result.client_id}' is no longer registered")
    now = time.time()
    token = issue_session_token(key, result.client_id, transport, ttl_s, now=now, binding=binding_of(entry))
    expires_at = int(now + ttl_s)
    access.audit("session_token_issued", client=result.client_id, transport=transport, ttl_s=ttl_s,
                 expires_at=expires_at, source=request.client.host if request.client else None)
    # The one place a token is ever written out: the body of this response, to its owner.
    return JSONResponse({"session_token": token, "token_type": "Bearer", "expires_at": expires_at,
                         "transport": transport, "client_id": result.client_id}, headers=_NO_STORE)


class _TooLarge(ValueError):
    pass


async def _read_body(request: Request) -> bytes:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise ValueError("send a JSON body with Content-Type: application/json")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > _MAX_BODY:
                raise _TooLarge(f"the request body is larger than {_MAX_BODY} bytes")
    except ClientDisconnect:
        raise ValueError("the request body was cut off") from None
    return bytes(body)


def _parse(body: bytes, max_ttl: int) -> tuple[Transport, int]:
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise ValueError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(data) - {"transport", "ttl_s"})
    if unknown:
        raise ValueError(f"{unknown[0][:40]}: unknown field; allowed: transport, ttl_s")
    transport = data.get("transport", "http")
    if transport not in ("http", "stdio"):
        raise ValueError("transport: must be 'http' or 'stdio'")
    transport = cast(Transport, transport)
    ttl_s = data.get("ttl_s", min(DEFAULT_TTL_S, max_ttl))
    if not isinstance(ttl_s, int) or isinstance(ttl_s, bool) or ttl_s < 1:
        raise ValueError("ttl_s: must be a whole number of seconds, at least 1")
    if ttl_s > max_ttl:
        raise ValueError(f"ttl_s: at most {max_ttl} seconds on this gateway")
    return transport, ttl_s

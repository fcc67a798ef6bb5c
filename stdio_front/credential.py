"""The STDIO front end's credential: a session token from the gateway, renewed before it runs out.

``LLMC_TOKEN`` may hold a client token (``llmc_…``) or a session token (``llmcs_…``):

* a client token is exchanged at start (``POST /session``, transport ``stdio``) and
  again whenever the session token nears its end or the gateway refuses it (say, the
  gateway was restarted with a new session key). The client token itself never travels
  on the MCP requests;
* a session token is checked at start (``GET /session``) and used as it is; it cannot be
  renewed (that needs the client token), so the front end serves until it expires.

Every refusal keeps the gateway's own ``error_description``, which says what is wrong
without quoting the token; that text is what the MCP client (or the person reading the
front end's stderr) sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx2

from shared.front_contract import TRANSPORT_HEADER
from shared.session_tokens import TOKEN_PREFIX as SESSION_PREFIX

__all__ = ["EXIT_CREDENTIAL", "EXIT_FAILED", "Credential", "FrontError", "GatewayAuth"]

EXIT_FAILED = 1
EXIT_CREDENTIAL = 2
_RENEW_FRACTION = 0.2  # renew once less than this share of the lifetime is left
_CREDENTIAL_STATUSES = frozenset({400, 401, 403, 429})


class FrontError(Exception):
    """Start-up failed; ``code`` is the exit code and ``str()`` the one line for stderr."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class Credential:
    def __init__(self, gateway: str, token: str, ttl_s: int, http: httpx2.AsyncClient) -> None:
        self._gateway = gateway
        self._token = token
        self._ttl_s = ttl_s
        self._http = http
        self._lock = asyncio.Lock()
        self.renewable = not token.startswith(SESSION_PREFIX)
        self.session = "" if self.renewable else token
        self.expires_at = 0.0
        self.client_id = ""
        self.last_refusal: str | None = None  # the gateway's reason for the latest 401, if any

    async def start(self) -> None:
        """Obtain (or check) the session token; ``FrontError`` if the gateway says no."""
        if self.renewable:
            await self._exchange()
        else:
            data = await self._call("GET", {})
            self.client_id, self.expires_at = str(data["client_id"]), float(data["expires_at"] or 0)

    async def current(self) -> str:
        """The session token to send now, renewed first if it is close to its end."""
        if self.renewable and time.time() > self.expires_at - self._ttl_s * _RENEW_FRACTION:
            await self.renew(stale=self.session)
        return self.session

    async def renew(self, stale: str) -> bool:
        """Exchange again unless another task already replaced ``stale``; False if that failed."""
        if not self.renewable:
            return False
        async with self._lock:
            if self.session != stale:
                return True
            try:
                await self._exchange()
            except FrontError as exc:
                self.last_refusal = str(exc)
                return False
        return True

    async def _exchange(self) -> None:
        data = await self._call("POST", {"transport": "stdio", "ttl_s": self._ttl_s})
        self.session, self.expires_at = str(data["session_token"]), float(data["expires_at"])
        self.client_id = str(data["client_id"])

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._gateway}/session"
        headers = {"Authorization": f"Bearer {self._token}", TRANSPORT_HEADER: "stdio"}
        try:
            if method == "POST":
                response = await self._http.post(url, json=body, headers=headers)
            else:
                response = await self._http.get(url, headers=headers)
        except httpx2.HTTPError as exc:
            raise FrontError(EXIT_FAILED, f"cannot reach the gateway at {self._gateway} ({type(exc).__name__}); "
                             "is it running? (`llm-caller up`)") from None
        if response.status_code == 200:
            data: dict[str, Any] = response.json()
            return data
        code = EXIT_CREDENTIAL if response.status_code in _CREDENTIAL_STATUSES else EXIT_FAILED
        raise FrontError(code, f"the gateway refused the token (HTTP {response.status_code}): "
                         f"{describe_refusal(response)}")


def describe_refusal(response: httpx2.Response) -> str:
    """The gateway's error_description (its own words, never the token), or the bare status."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no reason given"
    text = data.get("error_description") if isinstance(data, dict) else None
    return str(text)[:300] if text else response.reason_phrase or "no reason given"


class GatewayAuth(httpx2.Auth):
    """Puts the current session token on every MCP request; on a 401, renews once and resends."""

    requires_request_body = True  # so a refused POST can be sent again

    def __init__(self, credential: Credential) -> None:
        self._credential = credential

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await request.aread()
        token = await self._credential.current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and await self._credential.renew(stale=token):
            request.headers["Authorization"] = f"Bearer {self._credential.session}"
            response = yield request
        if response.status_code in (401, 429):  # a lockout is as much a refusal as a bad token
            await response.aread()
            self._credential.last_refusal = describe_refusal(response)
        else:
            self._credential.last_refusal = None

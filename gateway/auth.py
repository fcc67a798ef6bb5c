"""Client authentication against the local registry (client-registry.json).

Two kinds of bearer credential are accepted:

* a **client token** (``llmc_…``), long-lived; the registry holds only its SHA-256, and
  each presented token is hashed and compared in constant time against every entry;
* a **session token** (``llmcs_…``, ``shared.session_tokens``), short-lived and signed
  with the gateway's session key, bound to one client and one transport. Its client must
  still be in the registry, enabled and unexpired, and its binding (token hash and
  session generation) must be the one the token was issued under: rotating, disabling,
  removing or re-adding the client ends every session token issued before.

``authenticate`` returns an ``AuthResult`` that says who, or why not (a stable reason
code for the audit trail and a sentence for the 401's ``error_description``). The
front-end guard (``gateway.guard``) calls it once per request and publishes the result
in a context variable; the SDK's bearer middleware then calls ``verify_token`` for the
same request and gets that result back without a second check.

The registry file is re-read when it changes (checked at most once a second), so adding
or disabling a client takes effect without a restart. A change that does not validate
is refused and the previous registry stays in force.
"""

from __future__ import annotations

import hmac
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from mcp.server.auth.provider import AccessToken

from shared.config import ClientEntry, ClientRegistry, ConfigError, load_client_registry
from shared.logs import log_event
from shared.session_tokens import TOKEN_PREFIX as SESSION_PREFIX
from shared.session_tokens import SessionTokenError, Transport, session_binding, verify_session_token
from shared.tokens import hash_token

__all__ = ["AuthResult", "CredentialKind", "RegistryTokenVerifier", "binding_of", "current_auth"]

log = logging.getLogger("gateway.auth")

_RECHECK_S = 1.0
CredentialKind = Literal["client_token", "session_token"]

_SESSION_REASONS = {
    "format": "the session token is malformed (or from an older version of the gateway: get a new one)",
    "signature": "the session token's signature is invalid (altered, or signed with another key than this "
                 "gateway's; `llm-caller token issue` signs with the gateway's own key by default)",
    "expired": "the session token has expired; exchange the client token for a new one (POST /session)",
    "not_yet_valid": "the session token is not valid yet",
}


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of one credential check. ``access`` is set exactly when it succeeded."""

    kind: CredentialKind
    transport: Transport
    client_id: str | None = None
    access: AccessToken | None = None
    reason: str | None = None  # stable code for the audit trail, e.g. "client_disabled"
    description: str = ""  # for people: the 401's error_description (no quotes, no secrets)

    @property
    def ok(self) -> bool:
        return self.access is not None


# The result for the request being served, with the exact credential it was computed for.
_CURRENT: ContextVar[tuple[str, AuthResult] | None] = ContextVar("llmc_auth", default=None)


def current_auth() -> AuthResult | None:
    """The guard's verdict on the current request's credential (None outside a checked request)."""
    held = _CURRENT.get()
    return held[1] if held else None


class RegistryTokenVerifier:
    def __init__(self, registry_file: Path) -> None:
        self._file = registry_file
        self._registry = load_client_registry(registry_file)
        self._mtime = self._stat()
        self._checked = time.monotonic()
        self._session_key: bytes | None = None
        self.session_problem = "session tokens are not enabled on this gateway"

    def client(self, client_id: str) -> ClientEntry | None:
        return self._registry.clients.get(client_id)

    def enable_session_tokens(self, key: bytes | None, problem: str = "") -> None:
        """Accept session tokens signed with ``key``; None keeps them refused, saying ``problem``."""
        self._session_key = key
        self.session_problem = problem

    @property
    def session_key(self) -> bytes | None:
        return self._session_key

    def publish(self, token: str, result: AuthResult) -> object:
        """Make ``result`` the current request's verdict; returns what ``unpublish`` needs."""
        return _CURRENT.set((token, result))

    def unpublish(self, handle: object) -> None:
        _CURRENT.reset(handle)  # type: ignore[arg-type]

    async def verify_token(self, token: str) -> AccessToken | None:
        """The SDK's hook. Reuses the guard's verdict for this very credential when there is one."""
        held = _CURRENT.get()
        if held is not None and held[0] == token.strip():  # the SDK does not strip what follows "Bearer "
            return held[1].access
        return self.authenticate(token, "http").access

    def authenticate(self, token: str, transport: Transport) -> AuthResult:
        self._maybe_reload()
        if token.startswith(SESSION_PREFIX):
            return self._session(token, transport)
        return self._client_token(token, transport)

    # ---- the two credential kinds -----------------------------------------------------

    def _client_token(self, token: str, transport: Transport) -> AuthResult:
        presented = hash_token(token)
        match: str | None = None
        # Compare against every entry, without stopping early, so timing says nothing
        # about which (or whether any) entry matched.
        for name, entry in self._registry.clients.items():
            if hmac.compare_digest(presented, entry.token_sha256):
                match = name
        if match is None:
            return self._refuse("client_token", transport, None, "unknown_token",
                                "the token is not valid for this gateway; the operator creates a client token "
                                "with `llm-caller clients add NAME`")
        return self._admit("client_token", transport, match, presented, None)

    def _session(self, token: str, transport: Transport) -> AuthResult:
        if self._session_key is None:
            return self._refuse("session_token", transport, None, "session_tokens_unavailable",
                                self.session_problem)
        try:
            claims = verify_session_token(self._session_key, token, transport=transport)
        except SessionTokenError as exc:
            text = _SESSION_REASONS.get(exc.reason, str(exc))
            return self._refuse("session_token", transport, exc.client_id, f"session_{exc.reason}", text)
        entry = self._registry.clients.get(claims.client_id)
        if entry is None:
            return self._refuse("session_token", transport, claims.client_id, "client_removed",
                                f"client '{claims.client_id}' is no longer registered")
        # A disabled client hears "disabled" (from _admit), the more useful news, before "revoked".
        if not entry.disabled and not hmac.compare_digest(claims.binding, binding_of(entry)):
            return self._refuse("session_token", transport, claims.client_id, "session_revoked",
                                f"the session token was issued before client '{claims.client_id}' was rotated, "
                                "disabled or re-added; exchange the current client token for a new one "
                                "(POST /session) or ask the operator for one (`llm-caller token issue`)")
        return self._admit("session_token", transport, claims.client_id, hash_token(token), claims.expires_at)

    def _admit(self, kind: CredentialKind, transport: Transport, client_id: str, digest: str,
               session_expiry: int | None) -> AuthResult:
        entry = self._registry.clients[client_id]
        if entry.disabled:
            return self._refuse(kind, transport, client_id, "client_disabled",
                                f"client '{client_id}' is disabled; the operator can run "
                                f"`llm-caller clients enable {client_id}`")
        if entry.expires_at is not None and entry.expires_at <= time.time():
            return self._refuse(kind, transport, client_id, "client_expired",
                                f"the token of client '{client_id}' expired at {_utc(entry.expires_at)}; "
                                f"the operator can issue a new one with `llm-caller clients rotate {client_id}`")
        expiries = [t for t in (entry.expires_at, session_expiry) if t is not None]
        # The SDK keeps AccessToken.token around; give it a hash, never the credential itself.
        access = AccessToken(token=digest, client_id=client_id, scopes=[],
                             expires_at=min(expiries) if expiries else None)
        return AuthResult(kind, transport, client_id, access)

    def _refuse(self, kind: CredentialKind, transport: Transport, client_id: str | None, reason: str,
                description: str) -> AuthResult:
        # DEBUG only: failures are logged and audited in aggregate (gateway.failure_audit), so a
        # flood of bad tokens cannot fill the disk one line per try.
        if log.isEnabledFor(logging.DEBUG):
            log_event(log, "auth_failed", level=logging.DEBUG, client=client_id, reason=reason, credential=kind)
        return AuthResult(kind, transport, client_id, None, reason, description)

    # ---- registry reloads -------------------------------------------------------------

    def _stat(self) -> float | None:
        try:
            return self._file.stat().st_mtime
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < _RECHECK_S:
            return
        self._checked = now
        mtime = self._stat()
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            registry: ClientRegistry = load_client_registry(self._file)
        except ConfigError as exc:
            log_event(log, "registry_reload_refused", level=logging.ERROR, problems=exc.problems)
            return
        self._registry = registry
        log_event(log, "registry_reloaded", clients=len(registry.clients))


def binding_of(entry: ClientEntry) -> str:
    """The binding a session token for this client must carry (``shared.session_tokens``)."""
    return session_binding(entry.token_sha256, entry.session_generation)


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

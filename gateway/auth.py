"""Client authentication against the local registry (client-registry.json).

Plugged into the MCP SDK as its ``TokenVerifier``: the SDK's bearer middleware answers a
missing or unknown token with 401 and a ``WWW-Authenticate`` header pointing at our
RFC 9728 protected-resource metadata. The registry holds only SHA-256 hashes; each
presented token is hashed and compared in constant time against every entry.

The registry file is re-read when it changes (checked at most once a second), so adding
or disabling a client takes effect without a restart. A change that does not validate
is refused and the previous registry stays in force.
"""

from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path

from mcp.server.auth.provider import AccessToken

from shared.config import ClientEntry, ClientRegistry, ConfigError, load_client_registry
from shared.logs import log_event
from shared.tokens import hash_token

__all__ = ["RegistryTokenVerifier"]

log = logging.getLogger("gateway.auth")

_RECHECK_S = 1.0


class RegistryTokenVerifier:
    def __init__(self, registry_file: Path) -> None:
        self._file = registry_file
        self._registry = load_client_registry(registry_file)
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def client(self, client_id: str) -> ClientEntry | None:
        return self._registry.clients.get(client_id)

    async def verify_token(self, token: str) -> AccessToken | None:
        self._maybe_reload()
        presented = hash_token(token)
        match: str | None = None
        # Compare against every entry, without stopping early, so timing says nothing
        # about which (or whether any) entry matched.
        for name, entry in self._registry.clients.items():
            if hmac.compare_digest(presented, entry.token_sha256):
                match = name
        if match is None:
            log_event(log, "auth_failed", level=logging.WARNING, reason="unknown token")
            return None
        entry = self._registry.clients[match]
        if entry.disabled:
            log_event(log, "auth_failed", level=logging.WARNING, client=match, reason="client disabled")
            return None
        if entry.expires_at is not None and entry.expires_at <= time.time():
            log_event(log, "auth_failed", level=logging.WARNING, client=match, reason="token expired")
            return None
        # The SDK keeps AccessToken.token around; give it the hash, never the token itself.
        return AccessToken(token=presented, client_id=match, scopes=[], expires_at=entry.expires_at)

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

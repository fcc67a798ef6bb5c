"""Who may knock: credential checks with lockout and an audit trail, for every front end.

``AccessControl`` ties the registry verifier (``gateway.auth``) to the failure counter
(``gateway.lockout``) and writes the audit events (``shared.audit``). It is transport
agnostic; ``gateway.guard`` feeds it HTTP requests.

What is counted, and by which key:

* a remote (non-loopback) source by its address;
* on loopback every local tool shares 127.0.0.1, so the key is the address *plus a
  fingerprint of the presented credential*: one tool retrying a revoked token blocks
  itself, not its neighbours. A fingerprint is a keyed BLAKE2b of the credential under a
  per-process random key: cheap, unlinkable across restarts, and says nothing about the
  token (a raw token prefix would be a piece of a secret, and all session tokens share
  one). To stop a flood of random tokens (a new fingerprint each time) the address is
  counted as well, at ``LOOPBACK_SCALE`` times the threshold; while the address is
  blocked, only credentials that authenticated earlier in this run get through.

A request without any credential is refused with 401 but not counted: it guesses
nothing, and clients probe that way before they learn they need a token.

Audit events (file ``Settings.audit_file``): ``auth_failed``, ``auth_source_blocked``,
``auth_source_unblocked``, ``client_connected`` (first success per client, transport and
credential kind in this gateway run), ``mcp_session_opened`` (each 2025-11-25 session)
and, from ``gateway.session_endpoint``, ``session_token_issued``. None carries a token.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.auth import AuthResult, RegistryTokenVerifier
from gateway.lockout import BlockChange, Lockout, LockoutPolicy
from shared.audit import audit_event
from shared.files import FileWriteError
from shared.logs import log_event
from shared.session_tokens import Transport

__all__ = ["LOOPBACK_SCALE", "AccessControl", "Source"]

log = logging.getLogger("gateway.access")

LOOPBACK_SCALE = 10  # the shared loopback address tolerates this many times the per-credential threshold
_TRUSTED_MAX = 4096  # fingerprints remembered as good; a session token per stdio front adds one
_TIMER_SLACK_S = 0.01


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from, as far as counting failures is concerned."""

    address: str
    loopback: bool
    fingerprint: str | None  # of the presented credential; None when there was none

    @property
    def address_key(self) -> str:
        return f"a|{self.address}"

    @property
    def credential_key(self) -> str | None:
        # Only on loopback: a remote address is already specific enough.
        return f"c|{self.address}|{self.fingerprint}" if self.loopback and self.fingerprint else None


class AccessControl:
    def __init__(self, verifier: RegistryTokenVerifier, policy: LockoutPolicy, audit_file: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verifier = verifier
        self.lockout = Lockout(policy)
        self._audit_file = audit_file
        self._clock = clock
        self._salt = secrets.token_bytes(16)
        self._trusted: OrderedDict[str, None] = OrderedDict()
        self._connected: set[tuple[str, str, str]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def source(self, client: tuple[str, int] | list[Any] | None, credential: str | None) -> Source:
        address = str(client[0]) if client else "unknown"
        fingerprint = None
        if credential:
            digest = hashlib.blake2b(credential.encode("utf-8", "replace"), key=self._salt, digest_size=6)
            fingerprint = digest.hexdigest()
        return Source(address, _is_loopback(address), fingerprint)

    def retry_after(self, source: Source) -> float | None:
        """Seconds this source must wait, or None. No token is hashed and no registry touched."""
        now = self._clock()
        key = source.credential_key
        if key is not None and (wait := self.lockout.retry_after(key, now)) is not None:
            return wait
        if source.loopback and source.fingerprint in self._trusted:
            return None  # a flood of strangers on loopback must not lock out known-good tools
        return self.lockout.retry_after(source.address_key, now)

    def check(self, credential: str, transport: Transport, source: Source) -> AuthResult:
        result = self.verifier.authenticate(credential, transport)
        if result.ok:
            self._admitted(result, source)
        else:
            self._failed(result, source)
        return result

    def session_opened(self, result: AuthResult, source: Source) -> None:
        self.audit("mcp_session_opened", client=result.client_id, transport=result.transport,
                   credential=result.kind, source=source.address, protocol="2025-11-25")

    def audit(self, event: str, **fields: Any) -> None:
        """Write one audit event; a full disk is logged, never allowed to fail the request."""
        try:
            audit_event(self._audit_file, event, **fields)
        except (FileWriteError, ValueError) as exc:
            log_event(log, "audit_write_failed", level=logging.ERROR, audit_event=event, problem=str(exc))

    # ---- outcomes ---------------------------------------------------------------------

    def _admitted(self, result: AuthResult, source: Source) -> None:
        if source.fingerprint is not None:
            self._trusted[source.fingerprint] = None
            self._trusted.move_to_end(source.fingerprint)
            if len(self._trusted) > _TRUSTED_MAX:
                self._trusted.popitem(last=False)
        seen = (result.client_id or "", result.transport, result.kind)
        if seen not in self._connected:
            self._connected.add(seen)
            self.audit("client_connected", client=result.client_id, transport=result.transport,
                       credential=result.kind, source=source.address)

    def _failed(self, result: AuthResult, source: Source) -> None:
        self.audit("auth_failed", client=result.client_id, reason=result.reason, credential=result.kind,
                   transport=result.transport, source=source.address, credential_fp=source.fingerprint)
        now = self._clock()
        changes = []
        if source.credential_key is not None:
            changes += self.lockout.record_failure(source.credential_key, now)
        scale = LOOPBACK_SCALE if source.loopback else 1
        changes += self.lockout.record_failure(source.address_key, now, scale)
        for change in changes:
            self._report(change)
        if changes:
            self._schedule_expiry()

    def _report(self, change: BlockChange) -> None:
        kind, address, *rest = change.key.split("|")
        where: dict[str, Any] = {"source": address, "scope": "credential" if kind == "c" else "address",
                 "credential_fp": rest[0] if rest else None, "strikes": change.strikes}
        if change.blocked:
            log_event(log, "auth_source_blocked", level=logging.WARNING, duration_s=change.duration_s, **where)
            self.audit("auth_source_blocked", duration_s=change.duration_s,
                       threshold=self.lockout.policy.threshold, window_s=self.lockout.policy.window_s, **where)
        else:
            log_event(log, "auth_source_unblocked", rejected_while_blocked=change.rejected, **where)
            self.audit("auth_source_unblocked", rejected_while_blocked=change.rejected, **where)

    # ---- unblocking on time -----------------------------------------------------------

    def _schedule_expiry(self) -> None:
        """Arm one timer for the earliest block's end, so its unblock is audited when it happens."""
        due = self.lockout.next_expiry()
        if due is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (unit tests): blocks still end lazily on the next failure
        if self._timer is not None:
            if self._timer.when() <= loop.time() + (due - self._clock()):
                return  # already due no later than this one
            self._timer.cancel()
        self._timer = loop.call_later(max(0.0, due - self._clock()) + _TIMER_SLACK_S, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        for change in self.lockout.expire(self._clock()):
            self._report(change)
        self._schedule_expiry()


@functools.lru_cache(maxsize=1024)
def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a unix socket or a test client: count it as one remote source

"""Who may knock: credential checks with lockout and an audit trail, for every front end.

``AccessControl`` ties the registry verifier (``gateway.auth``) to the failure counter
(``gateway.lockout``) and the aggregated failure audit (``gateway.failure_audit``). It is
transport agnostic; ``gateway.guard`` feeds it HTTP requests.

The order is the point (decision D13, revised for issue #12):

1. **The credential is checked first.** A valid token of an enabled client is admitted,
   whatever anyone else on the machine has been doing: other callers' failures can never
   lock it out. The check is cheap (one SHA-256 and a comparison per registry entry, or
   one HMAC for a session token), so a flood of bad tokens costs about what a flood of
   any request costs, and no more.
2. **Only guesses are counted, per source.** A guess is a failing credential that names
   no client: an unknown client token, a forged or malformed session token. All of
   loopback (127.0.0.0/8, ::1, their IPv4-mapped forms) is *one* source, so rotating the
   source address across 127/8 gains nothing; a remote IPv6 peer counts by its /64, a
   remote IPv4 peer by its address.
3. **A source over the threshold is throttled.** Its guesses get **429** with
   ``Retry-After`` instead of 401 until the block ends. A failing credential that names
   a client (disabled, expired, wrong transport, a session token the client's change
   ended) is not a guess: it is never counted toward a block and always gets its 401 and
   the sentence saying why, which is what the client's owner needs to read. Every
   failure, guess or not, is audited (in aggregate).

Tokens are 256-bit random (session tokens HMAC-SHA256 signed), so guessing one is out of
reach at any rate; what the lockout limits is the noise: the audit trail and the log get
one line per source per window however long a flood lasts (``gateway.failure_audit``).

A request without any credential is refused with 401 but not counted: it guesses
nothing, and clients probe that way before they learn they need a token.

Audit events (file ``Settings.audit_file``): ``auth_failed`` (the first failure per source
and window), ``auth_failures`` (the window's count), ``auth_source_blocked``,
``auth_source_unblocked``, ``client_connected`` (first success per client, transport and
credential kind in this gateway run), ``mcp_session_opened`` (each 2025-11-25 session)
and, from ``gateway.session_endpoint``, ``session_token_issued``. None carries a token.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.auth import AuthResult, RegistryTokenVerifier
from gateway.failure_audit import FailureTally
from gateway.lockout import BlockChange, Lockout, LockoutPolicy
from shared.audit import audit_event
from shared.files import FileWriteError
from shared.logs import log_event
from shared.session_tokens import Transport

__all__ = ["LOOPBACK", "AccessControl", "Source"]

log = logging.getLogger("gateway.access")

LOOPBACK = "loopback"  # the one source every loopback address counts as
_TIMER_SLACK_S = 0.01


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from, as far as counting failures is concerned."""

    address: str  # the peer's address, as the socket reports it
    key: str  # what failures are counted by: LOOPBACK, an IPv6 /64, or the address itself


class AccessControl:
    def __init__(self, verifier: RegistryTokenVerifier, policy: LockoutPolicy, audit_file: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verifier = verifier
        self.lockout = Lockout(policy)
        self.failures = FailureTally(self.audit, policy.window_s, clock)
        self._audit_file = audit_file
        self._clock = clock
        self._connected: set[tuple[str, str, str]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def source(self, client: tuple[str, int] | list[Any] | None) -> Source:
        address = str(client[0]) if client else "unknown"
        return Source(address, source_key(address))

    def check(self, credential: str, transport: Transport, source: Source) -> tuple[AuthResult, float | None]:
        """The verdict on ``credential``, and when refused with a throttle, the seconds to wait (else None)."""
        result = self.verifier.authenticate(credential, transport)
        if result.ok:
            self._admitted(result, source)
            return result, None
        self.failures.record(source.key, source.address, reason=result.reason or "unknown", client=result.client_id,
                             credential=result.kind, transport=result.transport)
        if result.client_id is not None:
            return result, None  # names its client: not a guess, and its owner needs the reason (401)
        return result, self._guessed(source)

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
        seen = (result.client_id or "", result.transport, result.kind)
        if seen not in self._connected:
            self._connected.add(seen)
            self.audit("client_connected", client=result.client_id, transport=result.transport,
                       credential=result.kind, source=source.address)

    def _guessed(self, source: Source) -> float | None:
        """Count a failure that names no client; the seconds its source stays blocked if it already was."""
        now = self._clock()
        wait = self.lockout.retry_after(source.key, now)
        if wait is not None:
            return wait  # counted as rejected while blocked; it does not extend the block
        changes = self.lockout.record_failure(source.key, now)
        for change in changes:
            self._report(change)
        if changes:
            self._schedule_expiry()
        return None

    def _report(self, change: BlockChange) -> None:
        where: dict[str, Any] = {"source": change.key, "strikes": change.strikes}
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


@functools.lru_cache(maxsize=4096)
def source_key(address: str) -> str:
    """What failures from ``address`` are counted under (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # a unix socket or a test client: one remote source
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

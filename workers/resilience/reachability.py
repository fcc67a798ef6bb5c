"""Whether the provider's server can be reached at all, from calls and from probes.

A circuit breaker counts any failure that says something about the provider's health;
this counts only the plainest one: the connection itself failed (refused, reset, host
unknown). ``unreachable_after`` of those in a row, from calls or from probes, and the
provider is *unreachable*: the worker reports itself ``degraded`` with the error and
since when, its provider circuit is held open so calls fail fast with a message naming
the base URL, and the worker probes (a free model listing) every ``probe_interval_s``.
The first probe or call that gets any HTTP answer ends it: the server is back.

Connect *timeouts* do not count: a slow network is not a stopped server, and the circuit
breaker already handles timeouts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared import errors
from shared.logs import log_event
from workers.providers.base import display_url

__all__ = ["Reachability"]

log = logging.getLogger("workers.reachability")


class Reachability:
    """Consecutive connection failures, and whether they have made the provider unreachable."""

    def __init__(
        self, provider: str, base_url: str, *, threshold: int, probe_interval_s: float,
        on_change: Callable[[], None] | None = None, wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.url = display_url(base_url)
        self.threshold = threshold
        self.probe_interval_s = probe_interval_s
        self.on_change = on_change
        self._wall_clock = wall_clock
        self.failures = 0
        self.down_since: float | None = None
        self.last_reason = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def suspect(self) -> bool:
        """At least one connection failure not yet followed by an answer: worth probing."""
        return self.failures > 0

    def since_iso(self) -> str | None:
        if self.down_since is None:
            return None
        return datetime.fromtimestamp(self.down_since, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def message(self) -> str:
        """What a caller and getHealth are told while the provider is unreachable."""
        return (f"{self.provider} is unreachable at {self.url} since {self.since_iso()} "
                f"({self.last_reason}); calls fail fast until a probe (every {self.probe_interval_s:g}s) "
                f"reaches it")

    def connection_failed(self, error: errors.LLMCallerError) -> None:
        self.failures += 1
        self.last_reason = _reason(error)
        if self.down or self.failures < self.threshold:
            return
        self.down_since = self._wall_clock()
        log_event(log, "provider_unreachable", level=logging.WARNING, provider=self.provider, url=self.url,
                  failures=self.failures, reason=self.last_reason)
        self._changed()

    def answered(self) -> None:
        """The server answered (any HTTP status): reachable."""
        was_down = self.down
        self.failures = 0
        self.down_since = None
        if was_down:
            log_event(log, "provider_reachable", provider=self.provider, url=self.url)
            self._changed()

    def observe(self, error: errors.LLMCallerError | None) -> None:
        """A call's outcome. Only a success or a failed connection says anything about reachability:
        other errors may not have reached the server at all (an open circuit, our own rate limit)."""
        if error is None:
            self.answered()
        elif isinstance(error, errors.ConnectionFailed):
            self.connection_failed(error)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _reason(error: errors.LLMCallerError) -> str:
    """The cause part of a ConnectionFailed message ("cannot reach P at URL: <cause>")."""
    text = error.message.rpartition(": ")[2]
    return text[:120] or "connection failed"

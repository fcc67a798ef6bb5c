"""Authentication failures, audited in aggregate: a flood of bad tokens costs a few lines, not one per try.

Per source (``gateway.access.Source.key``: all of loopback is one source) and window:

* the first failure is written at once as ``auth_failed`` (client if known, reason,
  credential kind, transport, source and the address it came from), so one stray failure,
  say a disabled client, shows up in the trail straight away;
* every further failure in the window is only counted; when the window ends one
  ``auth_failures`` line sums it up: ``failures`` (all of them, the first included),
  ``by_reason``, ``by_client`` (the clients named by identified credentials),
  ``addresses`` (distinct peer addresses seen), ``first_at`` / ``last_at``.

So 10,000 failures in a minute from anywhere on loopback add two lines (plus the block
and unblock lines from ``gateway.access``). The table of open windows is bounded: past
``max_sources`` sources, failures from new ones are folded into the source ``other``.
Nothing here carries a token or any part of one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.logs import log_event

__all__ = ["FailureTally"]

log = logging.getLogger("gateway.access")

_MAX_NAMES = 20  # clients / reasons listed per summary; a longer tail is counted under "other"
_MAX_ADDRESSES = 4096  # distinct addresses remembered per window, for the count only
_OTHER = "other"

Writer = Callable[..., None]  # (event, **fields) -> None, e.g. AccessControl.audit


@dataclass(slots=True)
class _Window:
    opened: float  # monotonic
    first_at: float  # wall clock, for the summary
    last_at: float
    failures: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    clients: Counter[str] = field(default_factory=Counter)
    addresses: set[str] = field(default_factory=set)


class FailureTally:
    def __init__(self, write: Writer, window_s: float, clock: Callable[[], float] = time.monotonic,
                 max_sources: int = 1024) -> None:
        self._write = write
        self._window_s = window_s
        self._clock = clock
        self._max_sources = max_sources
        self._open: dict[str, _Window] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._open)

    def record(self, key: str, address: str, *, reason: str, client: str | None, credential: str,
               transport: str) -> None:
        """Count one failure from source ``key``; write a line only if it opens that source's window."""
        now = self._clock()
        self.flush(now)
        if key not in self._open and len(self._open) >= self._max_sources:
            key = _OTHER
        window = self._open.get(key)
        wall = time.time()
        if window is None:
            window = self._open[key] = _Window(opened=now, first_at=wall, last_at=wall)
            self._write("auth_failed", client=client, reason=reason, credential=credential, transport=transport,
                        source=key, address=address)
            self._schedule()
        window.failures += 1
        window.last_at = wall
        _bump(window.reasons, reason)
        if client is not None:
            _bump(window.clients, client)
        if len(window.addresses) < _MAX_ADDRESSES:
            window.addresses.add(address)

    def flush(self, now: float | None = None) -> None:
        """Close every window that has run its length, writing a summary where more than one failure fell in it."""
        moment = self._clock() if now is None else now
        for key in [k for k, w in self._open.items() if moment - w.opened >= self._window_s]:
            self._summarise(key, self._open.pop(key))

    def flush_all(self) -> None:
        """Close every window now (at shutdown), so no count is lost."""
        for key in list(self._open):
            self._summarise(key, self._open.pop(key))

    def _summarise(self, key: str, window: _Window) -> None:
        if window.failures <= 1:
            return  # the auth_failed line already said everything
        summary: dict[str, Any] = {
            "source": key, "failures": window.failures, "window_s": self._window_s,
            "by_reason": dict(window.reasons), "by_client": dict(window.clients),
            "addresses": len(window.addresses), "first_at": _iso(window.first_at), "last_at": _iso(window.last_at),
        }
        log_event(log, "auth_failures", level=logging.WARNING, **summary)
        self._write("auth_failures", **summary)

    def _schedule(self) -> None:
        """One timer for the earliest open window's end, so summaries appear without further traffic."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (unit tests): windows close on the next record() or flush()
        if self._timer is not None:
            return
        due = min(w.opened for w in self._open.values()) + self._window_s
        self._timer = loop.call_later(max(0.0, due - self._clock()) + 0.01, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()
        if self._open:
            self._schedule()


def _bump(counter: Counter[str], name: str) -> None:
    counter[name if name in counter or len(counter) < _MAX_NAMES else _OTHER] += 1


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

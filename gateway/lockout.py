"""Counting authentication failures per key and blocking a key that fails too often.

Pure bookkeeping: no I/O, no clock of its own (callers pass ``now``, a monotonic time),
so the rules are easy to test and cheap to apply. A *key* is whatever the caller counts
by (a remote address, or an address plus a credential fingerprint on loopback; see
``gateway.access``).

The rules:

* ``threshold`` failures within ``window_s`` block the key. Each key may carry its own
  threshold scale, so an aggregate key (a whole address) can be more tolerant than a
  single credential.
* The first block lasts ``base_s``; every further block of the same key doubles, up to
  ``max_s``. A key that stays clean for ``max_s`` after its last block starts over,
  so a tool that failed once last week is not punished for it today.
* While blocked, a key's requests are refused before any token is hashed. They are
  counted (``rejected``) but do not extend the block: an honest client retrying on its
  own schedule must be able to get back in.

The table is bounded: stale keys are swept once per window, and past ``max_keys`` the
least recently failing unblocked keys are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["BlockChange", "Lockout", "LockoutPolicy"]


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    threshold: int = 10
    window_s: float = 60.0
    base_s: float = 30.0
    max_s: float = 3600.0
    max_keys: int = 50_000

    def block_for(self, strikes: int) -> float:
        """Length of a key's ``strikes``-th block (1 = first)."""
        # Capping the exponent keeps 2**n finite for a key blocked thousands of times.
        return float(min(self.base_s * 2 ** min(strikes - 1, 40), self.max_s))


@dataclass(slots=True)
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    strikes: int = 0
    last_block_end: float = 0.0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class BlockChange:
    """A key was blocked (``blocked=True``, for ``duration_s``) or its block ran out."""

    key: str
    blocked: bool
    strikes: int
    duration_s: float = 0.0
    rejected: int = 0


class Lockout:
    def __init__(self, policy: LockoutPolicy) -> None:
        self.policy = policy
        # Ordered by most recent failure, so eviction drops the quietest keys first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._blocked: set[str] = set()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None if it is not blocked.

        This is the hot path for blocked traffic: one dict lookup, no hashing.
        """
        entry = self._entries.get(key)
        if entry is None or entry.blocked_until <= now:
            return None
        entry.rejected += 1
        return entry.blocked_until - now

    def record_failure(self, key: str, now: float, scale: int = 1) -> list[BlockChange]:
        """Count one failure; return the block changes it caused (an ended block, a new one)."""
        self._maybe_sweep(now)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            self._evict_if_full()
        else:
            self._entries.move_to_end(key)
        if entry.blocked_until > now:
            return []  # already blocked (a request that raced the block): nothing to add
        # A block that ran out but was not yet reported ends here, so no unblock goes unaudited.
        changes = [self._end_block(key, entry)] if key in self._blocked else []
        failures = entry.failures
        failures.append(now)
        while failures and failures[0] <= now - self.policy.window_s:
            failures.popleft()
        if len(failures) >= self.policy.threshold * scale:
            changes.append(self._block(key, entry, now))
        return changes

    def expire(self, now: float) -> list[BlockChange]:
        """End every block that has run out; the caller audits each returned change."""
        due = [k for k in self._blocked if self._entries[k].blocked_until <= now]
        return [self._end_block(key, self._entries[key]) for key in due]

    def next_expiry(self) -> float | None:
        """When the earliest current block ends (monotonic time), for scheduling ``expire``."""
        return min((self._entries[k].blocked_until for k in self._blocked), default=None)

    # ---- internals --------------------------------------------------------------------

    def _block(self, key: str, entry: _Entry, now: float) -> BlockChange:
        if entry.strikes and now - entry.last_block_end > self.policy.max_s:
            entry.strikes = 0  # clean for a long while: start the doubling over
        entry.strikes += 1
        duration = self.policy.block_for(entry.strikes)
        entry.blocked_until = now + duration
        entry.failures.clear()
        entry.rejected = 0
        self._blocked.add(key)
        return BlockChange(key, blocked=True, strikes=entry.strikes, duration_s=duration)

    def _end_block(self, key: str, entry: _Entry) -> BlockChange:
        self._blocked.discard(key)
        entry.last_block_end = entry.blocked_until
        change = BlockChange(key, blocked=False, strikes=entry.strikes, rejected=entry.rejected)
        entry.rejected = 0
        return change

    def _stale(self, entry: _Entry, now: float) -> bool:
        if entry.blocked_until > now or (entry.failures and entry.failures[-1] > now - self.policy.window_s):
            return False
        return entry.strikes == 0 or now - entry.last_block_end > self.policy.max_s

    def _maybe_sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.policy.window_s
        for key in [k for k, e in self._entries.items() if k not in self._blocked and self._stale(e, now)]:
            del self._entries[key]

    def _evict_if_full(self) -> None:
        excess = len(self._entries) - self.policy.max_keys
        if excess <= 0:
            return
        victims = []
        for key in self._entries:
            if key not in self._blocked:
                victims.append(key)
                if len(victims) >= excess:
                    break
        for key in victims:
            del self._entries[key]

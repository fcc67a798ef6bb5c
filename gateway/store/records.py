"""The rows a ``Store`` keeps: tasks, threads and their turns, the usage ledger, and the store's health.

Times are seconds since the epoch (``time.time()``), passed in by the caller so that a
backend never reads a clock of its own (tests drive time; two gateways agree on it through
the rows they write). Payloads (``result``, ``error``, ``messages``) are JSON as ``bytes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = ["TERMINAL", "BudgetCheck", "LedgerRow", "SpentRow", "StoreError", "StoreHealth", "TaskRow", "TaskStatus",
           "ThreadRow", "TurnRow", "UsageBy", "UsageTotal"]


class TaskStatus(enum.StrEnum):
    """A task's status as the MCP Tasks extension spells it (``input_required`` is never used here)."""

    WORKING = "working"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A task in one of these never changes again (the extension: terminal states are final).
TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class StoreError(Exception):
    """The store cannot be opened or used: missing folder, locked, corrupt, unreachable, too new.

    The message is for the operator (``getHealth``, the start-up log): it names the store by
    its redacted URL and says what to do; it never carries a password.
    """


@dataclass(slots=True)
class TaskRow:
    """One MCP task: who made it, where it stands, and its outcome once terminal.

    ``owner`` is the id of the gateway process running the call (a random id per start), so
    another gateway, or this one after a restart, can tell a task whose runner is gone.
    ``result`` is the ``CallToolResult`` (completed, ``isError`` included); ``error`` the
    JSON-RPC error object (failed).
    """

    task_id: str
    client: str
    tool: str
    status: TaskStatus
    created_at: float
    updated_at: float
    ttl_ms: int | None
    poll_interval_ms: int
    owner: str
    status_message: str | None = None
    cancel_requested: bool = False
    result: bytes | None = None
    error: bytes | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def expired(self, now: float) -> bool:
        """Past ``created_at + ttl_ms``: the task (and its result) may be deleted."""
        return self.ttl_ms is not None and now * 1000 >= self.created_at * 1000 + self.ttl_ms


@dataclass(slots=True)
class ThreadRow:
    """A conversation thread: its owner, size and lifetime. The turns are ``TurnRow``s."""

    thread_id: str
    client: str
    created_at: float
    updated_at: float
    expires_at: float | None
    turns: int = 0
    tokens: int = 0
    # Turns removed from the front to keep the thread within its bounds (shown to the caller).
    dropped_turns: int = 0
    # Sequence number the next appended turn gets; rises by one per turn, never reused.
    next_seq: int = 0


@dataclass(slots=True)
class TurnRow:
    """One turn of a thread: the messages it added (the user's and the reply) and what it cost."""

    seq: int
    messages: bytes
    tokens: int
    provider: str
    model: str
    created_at: float


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What ``getHealth`` shows about the store."""

    backend: str
    ok: bool
    detail: str


class LedgerRow(NamedTuple):
    """One call in the usage ledger, ok or not: a plain tuple, the only thing a call allocates for it.

    ``at`` is when the call ended (seconds since the epoch); token counts are None when the
    provider reported none; ``cost`` (USD) is None when the model has no price or nothing was
    reported; ``partial`` marks a stream cut off after its first chunk (its counts are then
    the estimate the gateway made, see ``gateway.budgets``).
    """

    request_id: str
    at: float
    client: str | None
    tool: str
    provider: str | None
    model: str | None
    outcome: str
    error_type: str | None
    latency_ms: float
    input_tokens: int | None
    cached_input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    cost: float | None
    partial: bool


# How ``usage_totals`` groups its sums.
UsageBy = Literal["client", "model", "day", "provider"]


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Sums over the ledger (and its kept daily summaries) for one group of ``usage_totals``.

    ``cost`` adds only the calls whose cost is known; ``unpriced_calls`` counts the others
    that used tokens, so a reader knows the sum is a floor.
    """

    key: str
    calls: int
    errors: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost: float
    unpriced_calls: int


class SpentRow(NamedTuple):
    """What one client (``kind`` ``client``) or provider (``provider``) spent since a UTC day and month began."""

    kind: str
    name: str
    usd_day: float
    tokens_day: int
    usd_month: float
    tokens_month: int


class BudgetCheck(NamedTuple):
    """One budget a call must fit in, for a reservation shared through the store (``Store.hold_budget``).

    ``kind`` and ``name`` pick the ledger rows (a client's or a provider's), ``first_day`` and
    ``last_day`` (YYYY-MM-DD, inclusive) the period; ``unit`` is ``usd`` (cost) or ``tokens``
    (input plus output); ``amount`` is what the call holds until its ledger row lands.
    """

    budget_key: str
    kind: str
    name: str
    first_day: str
    last_day: str
    unit: str
    limit: float
    amount: float

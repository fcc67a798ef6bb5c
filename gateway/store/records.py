"""The rows a ``Store`` keeps: tasks, threads and their turns, and the store's health.

Times are seconds since the epoch (``time.time()``), passed in by the caller so that a
backend never reads a clock of its own (tests drive time; two gateways agree on it through
the rows they write). Payloads (``result``, ``error``, ``messages``) are JSON as ``bytes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TERMINAL", "StoreError", "StoreHealth", "TaskRow", "TaskStatus", "ThreadRow", "TurnRow"]


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

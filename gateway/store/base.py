"""``Store``: what the gateway asks of a durable store, whatever the backend.

Every method is a coroutine, and every one that reads or changes a task or a thread takes
the calling client's id: a row of another client is as good as missing (the extension's
"authorize every task request"; threads are per client too). Methods that change a row do
so only from the state the caller expects, atomically, and say whether they did, so two
gateways sharing one PostgreSQL store cannot both finish one task or both append turn 3.

Backends: ``memory`` (the test seam), ``sqlite`` (the default), ``postgresql``. A backend
is one module with a class satisfying this protocol; ``gateway.store.open_store`` picks it
by the URL's scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.store.records import (
    BudgetCheck,
    LedgerRow,
    SpentRow,
    StoreHealth,
    TaskRow,
    TaskStatus,
    ThreadRow,
    TurnRow,
    UsageBy,
    UsageTotal,
)

__all__ = ["Store"]


class Store(Protocol):
    """Tasks, threads, and the leases that tell a live task runner from a dead one."""

    backend: str

    # ---- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and bring the schema to this version (migrations); ``StoreError`` when it cannot."""

    async def close(self) -> None:
        """Release connections; writes already acknowledged are durable."""

    async def health(self) -> StoreHealth:
        """A cheap live check (one round trip), never raising: failures come back as ``ok=False``."""

    # ---- tasks -----------------------------------------------------------------------
    async def create_task(self, row: TaskRow) -> None:
        """Insert a new task; once this returns, ``get_task`` on its id succeeds (the extension's rule)."""

    async def get_task(self, task_id: str, client: str, now: float) -> TaskRow | None:
        """The task if it exists, belongs to ``client`` and has not expired at ``now``."""

    async def set_task_progress(self, task_id: str, status_message: str, now: float) -> bool:
        """Update a working task's status message; False when the task is no longer working."""

    async def finish_task(
        self, task_id: str, status: TaskStatus, now: float, *,
        status_message: str | None = None, result: bytes | None = None, error: bytes | None = None,
    ) -> bool:
        """Move a working task to a terminal ``status`` with its outcome; False if it was not working."""

    async def request_cancel(self, task_id: str, client: str, now: float) -> TaskRow | None:
        """Flag ``client``'s task for cancellation (if still working) and return it; None when not found."""

    async def cancels_for(self, owner: str) -> list[str]:
        """Ids of the working tasks run by gateway ``owner`` that someone asked to cancel."""

    async def beat(self, owner: str, now: float) -> None:
        """Record that gateway ``owner`` is alive at ``now`` (its task-runner lease)."""

    async def fail_orphans(self, now: float, lease_s: float, error: bytes, status_message: str) -> int:
        """Fail every working task whose owner has not beaten within ``lease_s``; how many."""

    async def purge(self, now: float) -> int:
        """Delete expired tasks and threads (with their turns and blobs); how many rows went."""

    # ---- threads ---------------------------------------------------------------------
    async def create_thread(self, row: ThreadRow) -> None:
        """Insert a new, empty thread."""

    async def get_thread(self, thread_id: str, client: str, now: float) -> tuple[ThreadRow, list[TurnRow]] | None:
        """The thread and its turns in order, if it exists, is ``client``'s and has not expired."""

    async def append_turn(
        self, thread_id: str, client: str, turn: TurnRow, now: float, *,
        expires_at: float | None, drop_before_seq: int | None = None,
    ) -> bool:
        """Append ``turn`` if ``turn.seq`` is the thread's ``next_seq``, else change nothing and say False.

        In the same transaction, turns with ``seq < drop_before_seq`` are removed (counted in
        ``dropped_turns``), and ``turns``, ``tokens``, ``updated_at`` and ``expires_at`` follow.
        """

    async def list_threads(self, client: str, now: float) -> list[ThreadRow]:
        """``client``'s live threads, most recently updated first."""

    async def delete_thread(self, thread_id: str, client: str) -> bool:
        """Delete ``client``'s thread with its turns and blobs; False when there was none."""

    async def put_blob(self, thread_id: str, digest: str, mime: str, data: bytes) -> None:
        """Keep an image (or other binary part) of a thread once, by its content digest."""

    async def get_blob(self, thread_id: str, digest: str) -> tuple[str, bytes] | None:
        """(mime type, data) of a thread's blob, or None."""

    # ---- the usage ledger ------------------------------------------------------------
    async def record_usage(self, rows: Sequence[LedgerRow]) -> int:
        """Insert a batch of ledger rows in one transaction; a request id already present is left
        as it is (a batch sent twice adds nothing). How many rows were new."""

    async def usage_totals(self, since: float, by: UsageBy, client: str | None = None) -> list[UsageTotal]:
        """Sums per ``by`` key of the calls that ended at or after ``since`` (of ``client`` only, if
        given), sorted by key; summaries kept by retention count from their whole UTC day."""

    async def spent(self, now: float) -> list[SpentRow]:
        """Each client's and each provider's USD and tokens since the UTC day and UTC month of
        ``now`` began, ledger rows and kept summaries together (what budgets start from)."""

    async def summarise_ledger(self, before_day: str) -> int:
        """Fold the ledger rows of UTC days before ``before_day`` (YYYY-MM-DD) into per-day,
        per-client, per-model sums and delete them, in one transaction; how many rows went."""

    async def hold_budget(self, request_id: str, checks: Sequence[BudgetCheck], now: float,
                          expires_at: float) -> tuple[str, float] | None:
        """Reserve each check's ``amount`` for ``request_id`` until its ledger row is written (which
        deletes the holds in the same transaction) or ``expires_at``, if every budget's spent (ledger
        and summaries) plus live holds is below its limit; atomically across gateways sharing the
        store. None when held; else (budget_key, used) of the first full budget, and nothing held.
        The request's earlier holds are replaced; expired holds are deleted."""

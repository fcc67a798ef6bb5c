"""``SqlStore``: every ``Store`` method once, as a shared SQL operation, for both SQL backends.

Each method hands one generator of statements (``gateway.store.sql_ops``) to ``_op``,
which a backend implements: SQLite runs it on its own thread, PostgreSQL on a pooled
connection, each as one transaction. ``write=False`` marks an operation that only reads
(SQLite begins it without taking the write lock; PostgreSQL needs no hint). A new store
method is one operation in ``sql_ops``, one method here, and one in ``MemoryStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from gateway.store import sql_ops as ops
from gateway.store.records import (
    BudgetCheck,
    LedgerRow,
    SpentRow,
    TaskRow,
    TaskStatus,
    ThreadRow,
    TurnRow,
    UsageBy,
    UsageTotal,
)

__all__ = ["SqlStore", "ping"]

T = TypeVar("T")


def ping() -> ops.Op[None]:
    """The cheapest statement that proves the schema is there: the backends' health check."""
    yield ops.Query("SELECT 1 FROM llmc_schema LIMIT 1")


class SqlStore:
    """The ``Store`` methods over ``_op``; subclasses add the connection, lifecycle and health."""

    async def _op(self, op: ops.Op[T], write: bool = True) -> T:
        """Run ``op`` as one transaction and return what it returns."""
        raise NotImplementedError

    # ---- tasks ----------------------------------------------------------------------------
    async def create_task(self, row: TaskRow) -> None:
        await self._op(ops.create_task(row))

    async def get_task(self, task_id: str, client: str, now: float) -> TaskRow | None:
        return await self._op(ops.get_task(task_id, client, now), write=False)

    async def set_task_progress(self, task_id: str, status_message: str, now: float) -> bool:
        return await self._op(ops.set_task_progress(task_id, status_message, now))

    async def finish_task(
        self, task_id: str, status: TaskStatus, now: float, *,
        status_message: str | None = None, result: bytes | None = None, error: bytes | None = None,
    ) -> bool:
        return await self._op(ops.finish_task(task_id, status, now, status_message, result, error))

    async def request_cancel(self, task_id: str, client: str, now: float) -> TaskRow | None:
        return await self._op(ops.request_cancel(task_id, client, now))

    async def cancels_for(self, owner: str) -> list[str]:
        return await self._op(ops.cancels_for(owner), write=False)

    async def beat(self, owner: str, now: float) -> None:
        await self._op(ops.beat(owner, now))

    async def fail_orphans(self, now: float, lease_s: float, error: bytes, status_message: str) -> int:
        return await self._op(ops.fail_orphans(now, lease_s, error, status_message))

    async def purge(self, now: float) -> int:
        return await self._op(ops.purge(now))

    # ---- threads --------------------------------------------------------------------------
    async def create_thread(self, row: ThreadRow) -> None:
        await self._op(ops.create_thread(row))

    async def get_thread(self, thread_id: str, client: str, now: float) -> tuple[ThreadRow, list[TurnRow]] | None:
        return await self._op(ops.get_thread(thread_id, client, now), write=False)

    async def append_turn(
        self, thread_id: str, client: str, turn: TurnRow, now: float, *,
        expires_at: float | None, drop_before_seq: int | None = None,
    ) -> bool:
        return await self._op(ops.append_turn(thread_id, client, turn, now, expires_at, drop_before_seq))

    async def list_threads(self, client: str, now: float) -> list[ThreadRow]:
        return await self._op(ops.list_threads(client, now), write=False)

    async def delete_thread(self, thread_id: str, client: str) -> bool:
        return await self._op(ops.delete_thread(thread_id, client))

    async def put_blob(self, thread_id: str, digest: str, mime: str, data: bytes) -> None:
        await self._op(ops.put_blob(thread_id, digest, mime, data))

    async def get_blob(self, thread_id: str, digest: str) -> tuple[str, bytes] | None:
        return await self._op(ops.get_blob(thread_id, digest), write=False)

    # ---- the usage ledger -----------------------------------------------------------------
    async def record_usage(self, rows: Sequence[LedgerRow]) -> int:
        return await self._op(ops.record_usage(rows))

    async def usage_totals(self, since: float, by: UsageBy, client: str | None = None) -> list[UsageTotal]:
        return await self._op(ops.usage_totals(since, by, client), write=False)

    async def spent(self, now: float) -> list[SpentRow]:
        return await self._op(ops.spent(now), write=False)

    async def summarise_ledger(self, before_day: str) -> int:
        return await self._op(ops.summarise_ledger(before_day))

    async def hold_budget(self, request_id: str, checks: Sequence[BudgetCheck], now: float,
                          expires_at: float) -> tuple[str, float] | None:
        return await self._op(ops.hold_budget(request_id, checks, now, expires_at))


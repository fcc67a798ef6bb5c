"""``MemoryStore``: the ``Store`` protocol on dicts in this process: the test seam.

Tests of the task runner and of threads use it where a file or a server would only slow
them down; the contract tests run the same cases against it and the real backends, so it
cannot drift from them. Nothing survives the process, so it is never a configured default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

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
from gateway.store.sql_ops import utc_day

__all__ = ["MemoryStore"]


class MemoryStore:
    """Every ``Store`` method on plain dicts; single event loop, so no locking is needed."""

    backend = "memory"

    def __init__(self) -> None:
        self._tasks: dict[str, TaskRow] = {}
        self._leases: dict[str, float] = {}
        self._threads: dict[str, ThreadRow] = {}
        self._turns: dict[str, list[TurnRow]] = {}
        self._blobs: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._ledger: dict[str, LedgerRow] = {}
        # (day, client, provider, model) -> the eight sums of ``UsageTotal`` after its key.
        self._days: dict[tuple[str, str, str, str], list[float]] = {}
        # (request_id, budget_key, unit) -> (amount, expires_at)
        self._holds: dict[tuple[str, str, str], tuple[float, float]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def health(self) -> StoreHealth:
        return StoreHealth(self.backend, True, "in this process; nothing survives a restart")

    # ---- tasks -----------------------------------------------------------------------
    async def create_task(self, row: TaskRow) -> None:
        if row.task_id in self._tasks:
            raise ValueError(f"task {row.task_id} exists")
        self._tasks[row.task_id] = dataclasses.replace(row)

    async def get_task(self, task_id: str, client: str, now: float) -> TaskRow | None:
        row = self._tasks.get(task_id)
        if row is None or row.client != client or row.expired(now):
            return None
        return dataclasses.replace(row)

    async def set_task_progress(self, task_id: str, status_message: str, now: float) -> bool:
        row = self._tasks.get(task_id)
        if row is None or row.status is not TaskStatus.WORKING:
            return False
        row.status_message, row.updated_at = status_message, now
        return True

    async def finish_task(
        self, task_id: str, status: TaskStatus, now: float, *,
        status_message: str | None = None, result: bytes | None = None, error: bytes | None = None,
    ) -> bool:
        row = self._tasks.get(task_id)
        if row is None or row.status is not TaskStatus.WORKING:
            return False
        row.status, row.updated_at, row.result, row.error = status, now, result, error
        if status_message is not None:
            row.status_message = status_message
        return True

    async def request_cancel(self, task_id: str, client: str, now: float) -> TaskRow | None:
        row = self._tasks.get(task_id)
        if row is None or row.client != client or row.expired(now):
            return None
        if row.status is TaskStatus.WORKING and not row.cancel_requested:
            row.cancel_requested, row.updated_at = True, now
        return dataclasses.replace(row)

    async def cancels_for(self, owner: str) -> list[str]:
        return [t.task_id for t in self._tasks.values()
                if t.owner == owner and t.cancel_requested and t.status is TaskStatus.WORKING]

    async def beat(self, owner: str, now: float) -> None:
        self._leases[owner] = now

    async def fail_orphans(self, now: float, lease_s: float, error: bytes, status_message: str) -> int:
        failed = 0
        for row in self._tasks.values():
            seen = self._leases.get(row.owner)
            if row.status is TaskStatus.WORKING and (seen is None or now - seen > lease_s):
                row.status, row.updated_at, row.error = TaskStatus.FAILED, now, error
                row.status_message = status_message
                failed += 1
        return failed

    async def purge(self, now: float) -> int:
        tasks = [k for k, t in self._tasks.items() if t.expired(now)]
        threads = [k for k, t in self._threads.items() if t.expires_at is not None and now >= t.expires_at]
        for key in tasks:
            del self._tasks[key]
        gone = len(tasks)
        for key in threads:
            gone += 1 + len(self._turns.pop(key, []))
            del self._threads[key]
            for blob in [b for b in self._blobs if b[0] == key]:
                del self._blobs[blob]
                gone += 1
        return gone

    # ---- threads ---------------------------------------------------------------------
    async def create_thread(self, row: ThreadRow) -> None:
        if row.thread_id in self._threads:
            raise ValueError(f"thread {row.thread_id} exists")
        self._threads[row.thread_id] = dataclasses.replace(row)
        self._turns[row.thread_id] = []

    def _live_thread(self, thread_id: str, client: str, now: float) -> ThreadRow | None:
        row = self._threads.get(thread_id)
        if row is None or row.client != client or (row.expires_at is not None and now >= row.expires_at):
            return None
        return row

    async def get_thread(self, thread_id: str, client: str, now: float) -> tuple[ThreadRow, list[TurnRow]] | None:
        row = self._live_thread(thread_id, client, now)
        if row is None:
            return None
        return dataclasses.replace(row), [dataclasses.replace(t) for t in self._turns[thread_id]]

    async def append_turn(
        self, thread_id: str, client: str, turn: TurnRow, now: float, *,
        expires_at: float | None, drop_before_seq: int | None = None,
    ) -> bool:
        row = self._live_thread(thread_id, client, now)
        if row is None or turn.seq != row.next_seq:
            return False
        turns = self._turns[thread_id]
        if drop_before_seq is not None:
            kept = [t for t in turns if t.seq >= drop_before_seq]
            row.dropped_turns += len(turns) - len(kept)
            turns[:] = kept
        turns.append(dataclasses.replace(turn))
        row.next_seq = turn.seq + 1
        row.turns, row.tokens = len(turns), sum(t.tokens for t in turns)
        row.updated_at, row.expires_at = now, expires_at
        return True

    async def list_threads(self, client: str, now: float) -> list[ThreadRow]:
        rows = [self._live_thread(k, client, now) for k in self._threads]
        live = [dataclasses.replace(r) for r in rows if r is not None]
        return sorted(live, key=lambda r: r.updated_at, reverse=True)

    async def delete_thread(self, thread_id: str, client: str) -> bool:
        row = self._threads.get(thread_id)
        if row is None or row.client != client:
            return False
        del self._threads[thread_id]
        self._turns.pop(thread_id, None)
        for blob in [b for b in self._blobs if b[0] == thread_id]:
            del self._blobs[blob]
        return True

    async def put_blob(self, thread_id: str, digest: str, mime: str, data: bytes) -> None:
        self._blobs.setdefault((thread_id, digest), (mime, data))

    async def get_blob(self, thread_id: str, digest: str) -> tuple[str, bytes] | None:
        return self._blobs.get((thread_id, digest))

    # ---- the usage ledger ------------------------------------------------------------
    async def record_usage(self, rows: Sequence[LedgerRow]) -> int:
        added = 0
        for row in rows:
            if row.request_id not in self._ledger:
                self._ledger[row.request_id] = row
                added += 1
        done = {row.request_id for row in rows}
        for key in [k for k in self._holds if k[0] in done]:
            del self._holds[key]
        return added

    async def hold_budget(self, request_id: str, checks: Sequence[BudgetCheck], now: float,
                          expires_at: float) -> tuple[str, float] | None:
        for key in [k for k, (_, until) in self._holds.items() if k[0] == request_id or until <= now]:
            del self._holds[key]
        for check in checks:
            spent = 0.0
            for day, client, provider, _model, _at, sums in self._sums():
                name = client if check.kind == "client" else provider
                if name == check.name and check.first_day <= day <= check.last_day:
                    spent += sums[6] if check.unit == "usd" else sums[2] + sums[4]
            held = sum(amount for (_, key, unit), (amount, _until) in self._holds.items()
                       if key == check.budget_key and unit == check.unit)
            if spent + held >= check.limit:
                return check.budget_key, spent + held
        for check in checks:
            self._holds[(request_id, check.budget_key, check.unit)] = (check.amount, expires_at)
        return None

    def _sums(self) -> Iterator[tuple[str, str, str, str, float, list[float]]]:
        """(day, client, provider, model, at or -1 for a summary, the eight sums) of every row and summary."""
        for row in self._ledger.values():
            yield (utc_day(row.at), row.client or "", row.provider or "", row.model or "", row.at, _row_sums(row))
        for (day, client, provider, model), sums in self._days.items():
            yield day, client, provider, model, -1.0, sums

    async def usage_totals(self, since: float, by: UsageBy, client: str | None = None) -> list[UsageTotal]:
        groups: dict[str, list[float]] = {}
        since_day = utc_day(since)
        for day, who, provider, model, at, sums in self._sums():
            if (at >= since if at >= 0 else day >= since_day) and (client is None or who == client):
                key = {"client": who, "model": f"{provider}/{model}", "day": day, "provider": provider}[by]
                total = groups.setdefault(key, [0.0] * 8)
                for index, value in enumerate(sums):
                    total[index] += value
        return [UsageTotal(key, int(t[0]), int(t[1]), int(t[2]), int(t[3]), int(t[4]), int(t[5]), t[6], int(t[7]))
                for key, t in sorted(groups.items())]

    async def spent(self, now: float) -> list[SpentRow]:
        today = utc_day(now)
        month = today[:8] + "01"
        totals: dict[tuple[str, str], list[float]] = {}
        for day, client, provider, _model, _at, sums in self._sums():
            if day < month:
                continue
            for kind, name in (("client", client), ("provider", provider)):
                total = totals.setdefault((kind, name), [0.0, 0.0, 0.0, 0.0])
                tokens = sums[2] + sums[4]
                total[2] += sums[6]
                total[3] += tokens
                if day >= today:
                    total[0] += sums[6]
                    total[1] += tokens
        return [SpentRow(kind, name, t[0], int(t[1]), t[2], int(t[3])) for (kind, name), t in totals.items()]

    async def summarise_ledger(self, before_day: str) -> int:
        old = [row for row in self._ledger.values() if utc_day(row.at) < before_day]
        for row in old:
            key = (utc_day(row.at), row.client or "", row.provider or "", row.model or "")
            total = self._days.setdefault(key, [0.0] * 8)
            for index, value in enumerate(_row_sums(row)):
                total[index] += value
            del self._ledger[row.request_id]
        return len(old)


def _row_sums(row: LedgerRow) -> list[float]:
    """The eight sums of ``UsageTotal`` that one ledger row adds (as ``sql_ops`` counts them)."""
    unpriced = row.cost is None and (row.input_tokens is not None or row.output_tokens is not None)
    return [1.0, 0.0 if row.outcome == "ok" else 1.0, float(row.input_tokens or 0), float(row.cached_input_tokens or 0),
            float(row.output_tokens or 0), float(row.reasoning_tokens or 0), row.cost or 0.0, 1.0 if unpriced else 0.0]

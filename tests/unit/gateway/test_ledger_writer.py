"""The ledger writer: batches per window or per N rows, a full flush on stop, a failing store kept waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from gateway.ledger import LedgerWriter
from gateway.store import StoreSlot
from gateway.store.memory import MemoryStore
from gateway.store.records import LedgerRow, StoreError
from shared.settings import StoreSettings


class _CountingStore(MemoryStore):
    """A MemoryStore that records each batch it was given, and can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.failing = False

    async def record_usage(self, rows: Sequence[LedgerRow]) -> int:
        if self.failing:
            raise StoreError("store /tmp/x is locked by another process")
        self.batches.append(len(rows))
        return await super().record_usage(rows)


def _row(i: int) -> LedgerRow:
    return LedgerRow(f"r{i}", time.time(), "alice", "chat", "openai", "m", "ok", None, 1.0, 10, 0, 5, 0, 0.001, False)


def _writer(store: _CountingStore, window_ms: int = 100, batch_rows: int = 1000) -> LedgerWriter:
    settings = StoreSettings(ledger_window_ms=window_ms, ledger_batch_rows=batch_rows)
    return LedgerWriter(StoreSlot(store), settings)


async def _count(store: MemoryStore) -> int:
    return sum(t.calls for t in await store.usage_totals(0.0, "client"))


def test_rows_of_one_window_go_in_one_batch_and_add_never_waits() -> None:
    async def scenario() -> None:
        store = _CountingStore()
        writer = _writer(store, window_ms=150)
        await writer.start()
        for i in range(40):
            writer.add(_row(i))
        assert store.batches == []  # nothing written in the call path
        await asyncio.sleep(0.5)
        assert store.batches == [40] and await _count(store) == 40
        await writer.stop()
    asyncio.run(scenario())


def test_a_full_batch_is_written_before_the_window_ends() -> None:
    async def scenario() -> None:
        store = _CountingStore()
        writer = _writer(store, window_ms=60_000, batch_rows=10)
        await writer.start()
        for i in range(10):
            writer.add(_row(i))
        await asyncio.sleep(0.2)
        assert store.batches == [10]
        await writer.stop()
    asyncio.run(scenario())


def test_a_clean_stop_writes_every_row_even_mid_window() -> None:
    async def scenario() -> None:
        store = _CountingStore()
        writer = _writer(store, window_ms=60_000)
        await writer.start()
        for i in range(25):
            writer.add(_row(i))
        await writer.stop()
        assert await _count(store) == 25
    asyncio.run(scenario())


def test_a_failing_store_keeps_the_rows_and_a_later_window_writes_them() -> None:
    async def scenario() -> None:
        store = _CountingStore()
        store.failing = True
        writer = _writer(store, window_ms=50)
        await writer.start()
        for i in range(5):
            writer.add(_row(i))
        await asyncio.sleep(0.2)
        assert await _count(store) == 0
        store.failing = False
        writer.add(_row(5))
        await asyncio.sleep(0.2)
        assert await _count(store) == 6 and writer.written == 6
        await writer.stop()
    asyncio.run(scenario())


def test_without_a_store_budgets_are_not_ready_and_rows_wait() -> None:
    async def scenario() -> None:
        writer = LedgerWriter(StoreSlot(None, "store /x: no such folder"), StoreSettings(ledger_window_ms=50))
        await writer.start()
        writer.add(_row(1))
        await asyncio.sleep(0.1)
        assert not writer.budgets.ready and "no such folder" in writer.budgets.problem
        await writer.stop()
    asyncio.run(scenario())


def test_retention_folds_rows_older_than_the_kept_days_into_daily_sums_at_start() -> None:
    async def scenario() -> None:
        store = _CountingStore()
        old = [_row(i)._replace(at=time.time() - 5 * 86400) for i in range(3)]
        await store.record_usage([*old, _row(99)])
        before = await store.usage_totals(0.0, "client")
        writer = LedgerWriter(StoreSlot(store), StoreSettings(ledger_window_ms=50, ledger_keep_days=2))
        await writer.start()
        await asyncio.sleep(0.2)
        await writer.stop()
        assert len(store._ledger) == 1 and sum(s[0] for s in store._days.values()) == 3
        assert await store.usage_totals(0.0, "client") == before
    asyncio.run(scenario())

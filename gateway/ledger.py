"""The usage ledger's writer: every call's row goes to the store in batches, off the call path.

A call ends with ``add(row)``: one list append, nothing awaited. A background task wakes every
window (``LLMC_LEDGER_WINDOW_MS``, 200 ms by default) or as soon as ``LLMC_LEDGER_BATCH_ROWS``
rows wait, and writes what gathered in one transaction. What that guarantees:

* a clean stop (SIGTERM, ``llm-caller down``) writes every row: ``stop`` flushes after the
  server stopped taking calls;
* a crash (SIGKILL, power loss) loses the rows of calls that ended in the last window, plus
  the batch being written at that moment; nothing written before is lost (SQLite WAL,
  ``synchronous=NORMAL``: a committed transaction survives the process);
* a store that fails (locked, unreachable) keeps the rows in memory and tries again each
  window, up to ``_MAX_WAITING`` rows; beyond, the oldest are dropped and counted in the log.

The same task refreshes the budgets from the store (``gateway.budgets``) and, once an hour,
folds rows older than ``LLMC_LEDGER_KEEP_DAYS`` into per-day sums (retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from gateway.budgets import BudgetBook, Reservation
from gateway.store import StoreSlot
from gateway.store.records import LedgerRow, StoreError
from gateway.store.sql_ops import utc_day
from shared import errors
from shared.logs import log_event
from shared.settings import StoreSettings

if TYPE_CHECKING:
    from gateway.call_record import CallRecord

__all__ = ["LedgerWriter"]

log = logging.getLogger("gateway.ledger")

# Rows kept in memory while the store cannot take them; beyond this the oldest are dropped.
_MAX_WAITING = 100_000
_RETENTION_EVERY_S = 3600.0


class LedgerWriter:
    """Gathers ledger rows and writes them in one transaction per window; refreshes budgets."""

    def __init__(self, slot: StoreSlot, settings: StoreSettings, budgets: BudgetBook | None = None) -> None:
        self._slot = slot
        self._window_s = settings.ledger_window_ms / 1000
        self._batch_rows = settings.ledger_batch_rows
        self._keep_days = settings.ledger_keep_days
        self._refresh_s = settings.budget_refresh_s
        self.budgets = budgets if budgets is not None else BudgetBook()
        self._rows: list[LedgerRow] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_refresh = 0.0
        self._next_retention = 0.0
        self.written = 0
        self.dropped = 0

    # ---- the call path -------------------------------------------------------------------
    def add(self, row: LedgerRow) -> None:
        """Queue one call's row (never blocks, never awaits)."""
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._batch_rows:
            self._wake.set()

    def record_call(self, record: CallRecord, outcome: str, error_type: object, provider: str | None,
                    seconds: float) -> None:
        """The row of a call that just ended; its budget reservation is settled with it.

        A stream cut off before the provider reported counts (``partial``) is recorded, and
        charged, at its reservation's estimate when it had one: the provider may bill that much.
        """
        usage = record.usage
        reservation = record.reservation
        partial = outcome == "stream_interrupted"
        cost = record.cost_usd
        if usage is not None:
            counts = (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens)
        elif partial and reservation is not None:
            counts = (reservation.input_tokens, None, reservation.output_tokens, None)
            cost = reservation.usd if reservation.priced else None
        else:
            counts = (None, None, None, None)
        row = LedgerRow(record.request_id, time.time(), record.client, record.tool, provider, record.model, outcome,
                        error_type if isinstance(error_type, str) else None, seconds * 1000, *counts, cost, partial)
        self.add(row)
        if reservation is not None:
            self.budgets.settle(reservation, row)

    @property
    def shared(self) -> bool:
        """Whether other gateways may write this store (PostgreSQL): budgets then hold through it."""
        store = self._slot.store
        return store is not None and store.backend == "postgresql"

    async def hold(self, request_id: str, reservation: Reservation, expires_at: float) -> None:
        """Hold ``reservation`` in the shared store too, or release it and raise why not.

        ``BudgetExceeded`` when another gateway's spending or holds filled a budget;
        ``Unavailable`` when the store cannot be asked (uncounted spending is not let through).
        """
        store = self._slot.store
        try:
            if store is None:
                raise StoreError(self._slot.problem or "no store")
            full = await store.hold_budget(request_id, reservation.checks(), time.time(), expires_at)
        except (StoreError, ValueError, OSError) as exc:
            self.budgets.release(reservation)
            raise errors.Unavailable(f"budgets cannot be checked now ({exc}); the call was not sent",
                                     retry_after_s=5.0) from None
        if full is not None:
            self.budgets.release(reservation)
            raise reservation.refusal(*full)

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Read the budgets' starting point from the store, then start the writer task."""
        await self._refresh(time.monotonic())
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self) -> None:
        """Write every queued row (the server has stopped taking calls), then end the task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._rows:
            log_event(log, "ledger_rows_lost", level=logging.ERROR, rows=len(self._rows),
                      problem="the store did not take the last rows before the gateway stopped")

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._window_s)
            self._wake.clear()
            await self.flush()
            now = time.monotonic()
            if now >= self._next_refresh:
                await self._refresh(now)
            if now >= self._next_retention:
                await self._retain(now)

    # ---- the writer's steps --------------------------------------------------------------
    async def flush(self) -> int:
        """Write the rows gathered so far in one transaction; how many were written."""
        if not self._rows:
            return 0
        rows, self._rows = self._rows, []
        store = self._slot.store
        if store is None:
            self._keep(rows, self._slot.problem or "no store")
            return 0
        try:
            await store.record_usage(rows)
        except (StoreError, ValueError, OSError) as exc:
            self._keep(rows, str(exc))
            return 0
        self.written += len(rows)
        self.budgets.flushed(rows)
        return len(rows)

    def _keep(self, rows: list[LedgerRow], problem: str) -> None:
        """The store did not take ``rows``: keep them for the next window, within the cap."""
        waiting = rows + self._rows
        if len(waiting) > _MAX_WAITING:
            lost = len(waiting) - _MAX_WAITING
            self.dropped += lost
            self.budgets.dropped(waiting[:lost])
            waiting = waiting[lost:]
            log_event(log, "ledger_rows_dropped", level=logging.ERROR, rows=lost, problem=problem)
        else:
            log_event(log, "ledger_write_failed", level=logging.WARNING, rows=len(rows), problem=problem)
        self._rows = waiting

    async def _refresh(self, now: float) -> None:
        self._next_refresh = now + self._refresh_s
        store = self._slot.store
        if store is None:
            self.budgets.failed(self._slot.problem or "no store")
            return
        wall = time.time()  # one clock reading for the query and the keys: no day boundary between them
        try:
            spent = await store.spent(wall)
        except (StoreError, ValueError, OSError) as exc:
            self.budgets.failed(str(exc))
            log_event(log, "budget_refresh_failed", level=logging.WARNING, problem=str(exc))
            return
        self.budgets.refreshed(spent, wall)

    async def _retain(self, now: float) -> None:
        """Fold rows older than the kept days into per-day sums and delete them."""
        self._next_retention = now + _RETENTION_EVERY_S
        store = self._slot.store
        if store is None:
            return
        before = utc_day(time.time() - self._keep_days * 86400.0)
        try:
            gone = await store.summarise_ledger(before)
        except (StoreError, ValueError, OSError) as exc:
            log_event(log, "ledger_retention_failed", level=logging.WARNING, problem=str(exc))
            return
        if gone:
            log_event(log, "ledger_summarised", rows=gone, before_day=before)

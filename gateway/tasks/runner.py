"""``TaskRunner``: runs task calls in the background and keeps their rows in the store true.

A task call is the same coroutine a plain call runs (routing, retries, fallbacks, one
``tool_call`` line and one metric count); the runner only moves it off the request and
writes where it stands: progress (coalesced), then exactly one terminal outcome
(``completed`` with the ``CallToolResult``, ``isError`` included; ``failed`` with a JSON-RPC
error; ``cancelled``). ``start_within`` first awaits the call for an inline window
(``LLMC_TASK_INLINE_S``): a call that ends in it is answered plain and never gets a row.

Housekeeping, one loop per gateway process (``owner`` is a random id per start):
- every ``lease_s/3`` it renews its lease (``Store.beat``);
- every ``CANCEL_POLL_S`` it asks the store for cancels of its tasks that arrived through
  another gateway sharing the store, and cancels those calls here;
- at start and every ``lease_s/2`` it fails working tasks whose gateway's lease ran out
  (that gateway stopped mid-call; the call is never re-run, since calls cost money) and
  purges expired tasks.

A gateway that stops cleanly (SIGTERM) fails its own running task calls the same way, at
once, instead of leaving them to the next gateway's sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

import mcp_types as types
import orjson
from mcp.shared.exceptions import MCPError

from gateway.store import StoreSlot
from gateway.store.base import Store
from gateway.store.records import TaskRow, TaskStatus
from gateway.tasks import progress
from gateway.tasks.wire import created_view, internal_error, lost_call_error
from shared.logs import log_event
from shared.settings import StoreSettings

__all__ = ["CANCEL_POLL_S", "ORPHAN_MESSAGE", "TaskRunner"]

log = logging.getLogger("gateway.tasks")

CANCEL_POLL_S = 0.5
ORPHAN_MESSAGE = ("the gateway running this call stopped; the call was not re-run, since calls cost money")
Call = Callable[[], Coroutine[Any, Any, types.CallToolResult]]


class TaskRunner:
    """Task calls of this gateway process, their store rows and the housekeeping loop."""

    def __init__(self, slot: StoreSlot, settings: StoreSettings, clock: Callable[[], float] = time.time) -> None:
        self.slot = slot
        self.settings = settings
        self.clock = clock
        self.owner = secrets.token_hex(12)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._beaten: Store | None = None  # the store our lease was last renewed in

    @property
    def available(self) -> bool:
        """False when the store could not be opened: calls then run as plain calls."""
        return self.slot.store is not None

    # ---- task calls ------------------------------------------------------------------
    async def start(self, client: str, tool: str, call: Call) -> dict[str, Any]:
        """Create the task row, then start ``call`` in the background; the ``CreateTaskResult``.

        A store error here is raised before the call starts (no paid call without its row)."""
        store = await self._leased_store()
        sink = progress.TaskProgress(None, self.settings.task_poll_ms / 2000)
        row = self._new_row(client, tool, sink)
        await store.create_task(row)  # durable before the handle goes out (the extension's rule)
        return self._handed_out(store, row, self._launch(call, sink, tool), sink, 0.0)

    async def start_within(self, client: str, tool: str, call: Call,
                           inline_s: float) -> dict[str, Any] | types.CallToolResult:
        """Start ``call``; its plain result if it ends within ``inline_s``, else a ``CreateTaskResult``.

        The task row is created (with the progress so far) only once the window has passed,
        and always before the handle goes out (the extension's rule). A call that ends in the
        window leaves no row. Cancelling this request during the window cancels the call.
        """
        if inline_s <= 0:
            return await self.start(client, tool, call)
        store = await self._leased_store()
        sink = progress.TaskProgress(None, self.settings.task_poll_ms / 2000)
        job = self._launch(call, sink, tool)
        if await _ended_within(job, inline_s):
            return job.result()  # the immediate result: raises what the call raised, as a plain call
        row = self._new_row(client, tool, sink)
        try:
            await store.create_task(row)
        except asyncio.CancelledError:
            job.cancel()
            self._follow(store, row, job, sink)  # a row written after all then ends `cancelled`
            raise
        except Exception as exc:  # the store failed just now: the call goes on, answered plain
            log_event(log, "task_create_failed", level=logging.WARNING, tool=tool, problem=type(exc).__name__)
            return await job
        return self._handed_out(store, row, job, sink, inline_s)

    async def _leased_store(self) -> Store:
        store = self.slot.get()
        if store is not self._beaten:  # a store opened after start-up: hold a lease there first
            await self._beat(store)
        return store

    def _new_row(self, client: str, tool: str, sink: progress.TaskProgress) -> TaskRow:
        now = self.clock()
        return TaskRow(task_id=secrets.token_urlsafe(24), client=client, tool=tool, status=TaskStatus.WORKING,
                       created_at=now, updated_at=now, ttl_ms=self.settings.task_ttl_s * 1000,
                       poll_interval_ms=self.settings.task_poll_ms, owner=self.owner,
                       status_message=sink.message() if sink.chunks else "working")

    @staticmethod
    def _launch(call: Call, sink: progress.TaskProgress, tool: str) -> asyncio.Task[types.CallToolResult]:
        """Run ``call`` in a context of its own whose chatStream deltas go to ``sink``."""
        context = contextvars.copy_context()
        context.run(progress.CURRENT.set, sink)
        return asyncio.create_task(call(), name=f"call-{tool}", context=context)

    def _handed_out(self, store: Store, row: TaskRow, job: asyncio.Task[types.CallToolResult],
                    sink: progress.TaskProgress, inline_s: float) -> dict[str, Any]:
        """The row exists: progress is written from now on, and the outcome when the call ends."""
        sink.attach(lambda message: store.set_task_progress(row.task_id, message, self.clock()))
        self._follow(store, row, job, sink)
        log_event(log, "task_created", tool=row.tool, client=row.client, after_inline_s=inline_s)
        return created_view(row)

    def _follow(self, store: Store, row: TaskRow, job: asyncio.Task[types.CallToolResult],
                sink: progress.TaskProgress) -> None:
        """Write ``job``'s outcome to ``row`` when it ends; ``cancel_local`` cancels it through here."""
        follower = asyncio.create_task(self._run(store, row, job, sink), name=f"task-{row.tool}")
        self._running[row.task_id] = follower
        follower.add_done_callback(lambda _job: self._running.pop(row.task_id, None))

    async def _run(self, store: Store, row: TaskRow, job: asyncio.Task[types.CallToolResult],
                   sink: progress.TaskProgress) -> None:
        try:
            result = await job  # cancelling this task cancels the call, then lands here once it ended
        except asyncio.CancelledError:
            await sink.close()
            if self._stopping:  # this gateway is going down mid-call: as if its lease had run out
                await self._finish(store, row, TaskStatus.FAILED, ORPHAN_MESSAGE, error=internal_error(ORPHAN_MESSAGE))
            else:
                await self._finish(store, row, TaskStatus.CANCELLED, "cancelled at the client's request")
            return
        except MCPError as exc:
            await sink.close()
            error = exc.error.model_dump(mode="json", exclude_none=True)
            await self._finish(store, row, TaskStatus.FAILED, exc.error.message, error=error)
            return
        except Exception:
            log.exception("task_call_crashed", extra={"tool": row.tool})
            await sink.close()
            await self._finish(store, row, TaskStatus.FAILED, "the gateway failed unexpectedly; the error was logged",
                               error=internal_error("the gateway failed unexpectedly; the error was logged"))
            return
        await sink.close()
        lost = lost_call_error(result)
        if lost is not None:  # the worker died mid-call: failed, never re-run (issue #17)
            await self._finish(store, row, TaskStatus.FAILED, lost["message"], error=lost)
            return
        done = f"completed: {sink.chunks} chunks" if sink.chunks else "completed"
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        await self._finish(store, row, TaskStatus.COMPLETED, done, result=dumped)

    async def _finish(self, store: Store, row: TaskRow, status: TaskStatus, message: str, *,
                      result: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> None:
        try:
            await store.finish_task(row.task_id, status, self.clock(), status_message=message,
                                    result=None if result is None else orjson.dumps(result),
                                    error=None if error is None else orjson.dumps(error))
        except Exception as exc:  # the lease then lapses and the task is failed as an orphan
            log_event(log, "task_finish_failed", level=logging.ERROR, tool=row.tool, problem=type(exc).__name__)
            return
        log_event(log, "task_finished", tool=row.tool, status=status.value)

    def cancel_local(self, task_id: str) -> bool:
        """Cancel the call of ``task_id`` if this process runs it (as a client cancellation would)."""
        job = self._running.get(task_id)
        if job is None or job.done():
            return False
        job.cancel()
        return True

    # ---- housekeeping ----------------------------------------------------------------
    async def start_housekeeping(self) -> None:
        """Beat and sweep once if the store is open (so our own tasks are never orphans), then loop."""
        if self.slot.store is not None:
            await self._beat(self.slot.store)
            await self._sweep(self.slot.store)
        self._loop = asyncio.create_task(self._housekeep(), name="task-housekeeping")

    async def stop(self) -> None:
        """The gateway is stopping: stop the loop, and end each running call as ``failed`` (never re-run)."""
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        jobs = [job for job in self._running.values() if not job.done()]
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.wait(jobs, timeout=5.0)

    async def _housekeep(self) -> None:
        """Every round, on whatever store the slot holds now (it may open later, see ``StoreSlot``)."""
        lease = self.settings.task_lease_s
        next_beat = next_sweep = time.monotonic()
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            store = self.slot.store
            if store is None:
                continue
            now = time.monotonic()
            try:
                await self._relay_cancels(store)
                if now >= next_beat or store is not self._beaten:
                    await self._beat(store)
                    next_beat = now + lease / 3
                if now >= next_sweep:
                    await self._sweep(store)
                    next_sweep = now + lease / 2
            except Exception as exc:  # the store is unreachable for now: try again next round
                log_event(log, "task_housekeeping_failed", level=logging.WARNING, problem=type(exc).__name__)

    async def _beat(self, store: Store) -> None:
        await store.beat(self.owner, self.clock())
        self._beaten = store

    async def _relay_cancels(self, store: Store) -> None:
        for task_id in await store.cancels_for(self.owner):
            self.cancel_local(task_id)

    async def _sweep(self, store: Store) -> None:
        error = orjson.dumps(internal_error(ORPHAN_MESSAGE))
        failed = await store.fail_orphans(self.clock(), self.settings.task_lease_s, error, ORPHAN_MESSAGE)
        purged = await store.purge(self.clock())
        if failed or purged:
            log_event(log, "task_sweep", orphans_failed=failed, purged=purged)


async def _ended_within(job: asyncio.Task[types.CallToolResult], window_s: float) -> bool:
    """Wait up to ``window_s`` for ``job``; if this request is cancelled meanwhile, so is the call."""
    try:
        done, _ = await asyncio.wait({job}, timeout=window_s)
    except asyncio.CancelledError:
        job.cancel()  # notifications/cancelled or a closed connection: the provider request stops too
        await asyncio.wait({job})  # until it has ended (its one tool_call line written)
        raise
    return bool(done)

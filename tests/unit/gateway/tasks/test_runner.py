"""``TaskRunner`` on the in-process store: outcomes, progress coalescing, cancel, orphans, purge."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import mcp_types as types
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from gateway.store import StoreSlot
from gateway.store.memory import MemoryStore
from gateway.store.records import TaskRow, TaskStatus
from gateway.tasks import progress
from gateway.tasks.runner import ORPHAN_MESSAGE, TaskRunner
from shared.settings import StoreSettings

CLIENT = "alice"


def _runner(store: MemoryStore, poll_ms: int = 100) -> TaskRunner:
    return TaskRunner(StoreSlot(store), StoreSettings(task_poll_ms=poll_ms, task_ttl_s=60, task_lease_s=1.0))


async def _settle(store: MemoryStore, task_id: str, timeout_s: float = 2.0) -> TaskRow:
    for _ in range(int(timeout_s / 0.01)):
        row = await store.get_task(task_id, CLIENT, _now())
        assert row is not None
        if row.terminal:
            return row
        await asyncio.sleep(0.01)
    raise AssertionError("the task did not end")


def _now() -> float:
    return time.time()


def _text(text: str, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)


def test_a_result_even_an_is_error_one_is_completed_with_the_result_inlined() -> None:
    async def scenario() -> list[TaskRow]:
        store = MemoryStore()
        runner = _runner(store)
        rows = []
        for result in (_text("fine"), _text("provider said no", is_error=True)):
            async def call(result: types.CallToolResult = result) -> types.CallToolResult:
                return result
            handle = await runner.start(CLIENT, "chat", call)
            assert handle["resultType"] == "task" and handle["status"] == "working"
            assert await store.get_task(handle["taskId"], CLIENT, _now()) is not None  # durable at once
            rows.append(await _settle(store, handle["taskId"]))
        return rows

    fine, refused = asyncio.run(scenario())
    assert fine.status is TaskStatus.COMPLETED and orjson.loads(fine.result or b"")["content"][0]["text"] == "fine"
    assert refused.status is TaskStatus.COMPLETED and orjson.loads(refused.result or b"")["isError"] is True


@pytest.mark.parametrize(("raised", "code"), [(MCPError(-32602, "bad"), -32602), (RuntimeError("boom"), -32603)])
def test_a_json_rpc_error_or_a_crash_is_failed_with_the_error(raised: Exception, code: int) -> None:
    async def scenario() -> TaskRow:
        store = MemoryStore()

        async def call() -> types.CallToolResult:
            raise raised

        handle = await _runner(store).start(CLIENT, "chat", call)
        return await _settle(store, handle["taskId"])

    row = asyncio.run(scenario())
    error: dict[str, Any] = orjson.loads(row.error or b"{}")
    assert row.status is TaskStatus.FAILED and error["code"] == code and "boom" not in error["message"]


def test_progress_is_coalesced_and_bounded_then_the_call_is_cancelled() -> None:
    async def scenario() -> tuple[list[str], TaskRow]:
        store = MemoryStore()
        runner = _runner(store, poll_ms=200)  # writes at most every 0.1 s
        writes: list[str] = []
        original = store.set_task_progress

        async def counting(task_id: str, message: str, now: float) -> bool:
            writes.append(message)
            return await original(task_id, message, now)

        store.set_task_progress = counting  # type: ignore[method-assign,assignment]
        started = asyncio.Event()

        async def call() -> types.CallToolResult:
            sink = progress.CURRENT.get()
            assert sink is not None
            for count in range(1, 201):
                await sink.report(count, "x" * 50)
                await asyncio.sleep(0.001)
            started.set()
            await asyncio.sleep(60)
            return _text("never")

        handle = await runner.start(CLIENT, "chatStream", call)
        await started.wait()
        await asyncio.sleep(0.15)
        assert runner.cancel_local(handle["taskId"])
        return writes, await _settle(store, handle["taskId"])

    writes, row = asyncio.run(scenario())
    assert 1 <= len(writes) <= 10, len(writes)  # 200 deltas in about 0.3 s
    assert writes[-1].startswith("streaming: 200 chunks, 10000 chars so far\n")
    assert len(writes[-1]) < progress.MAX_TEXT + 100
    assert row.status is TaskStatus.CANCELLED and row.result is None


def test_a_task_whose_gateway_stopped_is_failed_not_rerun_and_expired_tasks_go() -> None:
    async def scenario() -> tuple[TaskRow | None, TaskRow | None, TaskRow | None]:
        store = MemoryStore()
        now = _now()
        dead = TaskRow("t-dead", CLIENT, "chat", TaskStatus.WORKING, now - 5, now - 5, 60_000, 100, owner="gone")
        old = TaskRow("t-old", CLIENT, "chat", TaskStatus.COMPLETED, now - 120, now - 100, 60_000, 100, owner="gone")
        await store.beat("gone", now - 5)
        await store.create_task(dead)
        await store.create_task(old)
        runner = _runner(store)
        await runner.start_housekeeping()
        await runner.stop()
        mine = await runner.start(CLIENT, "chat", lambda: asyncio.sleep(0.05, _text("ok")))
        return (await store.get_task("t-dead", CLIENT, now), store._tasks.get("t-old"),
                await _settle(store, mine["taskId"]))

    dead, old, mine = asyncio.run(scenario())
    assert dead is not None and dead.status is TaskStatus.FAILED and dead.status_message == ORPHAN_MESSAGE
    assert orjson.loads(dead.error or b"{}") == {"code": -32603, "message": ORPHAN_MESSAGE}
    assert old is None
    assert mine is not None and mine.status is TaskStatus.COMPLETED


def test_a_cancel_flagged_through_another_gateway_reaches_the_call_within_a_second() -> None:
    async def scenario() -> tuple[float, TaskRow]:
        store = MemoryStore()
        runner = _runner(store)
        await runner.start_housekeeping()
        try:
            handle = await runner.start(CLIENT, "chat", lambda: asyncio.sleep(60, _text("never")))
            await asyncio.sleep(0.05)
            flagged = time.monotonic()
            assert await store.request_cancel(handle["taskId"], CLIENT, _now()) is not None  # the other gateway
            row = await _settle(store, handle["taskId"])
            return time.monotonic() - flagged, row
        finally:
            await runner.stop()

    took, row = asyncio.run(scenario())
    print(f"cancel relayed in {took:.2f} s")
    assert row.status is TaskStatus.CANCELLED and took < 1.0


def test_a_store_that_opens_after_start_up_gets_a_lease_before_the_first_task() -> None:
    async def scenario() -> tuple[bool, TaskRow]:
        slot = StoreSlot(None, "locked at start-up")
        runner = TaskRunner(slot, StoreSettings(task_poll_ms=100, task_lease_s=0.3))
        await runner.start_housekeeping()
        try:
            available_before = runner.available
            store = MemoryStore()
            slot.store = store  # StoreSlot.refresh reopened it
            handle = await runner.start(CLIENT, "chat", lambda: asyncio.sleep(1.0, _text("slow but fine")))
            await store.fail_orphans(_now(), 0.3, b"{}", "orphan")  # another gateway's sweep, at once
            return available_before, await _settle(store, handle["taskId"], timeout_s=3)
        finally:
            await runner.stop()

    available_before, row = asyncio.run(scenario())
    assert available_before is False
    assert row.status is TaskStatus.COMPLETED, row.status_message


def test_a_call_that_ends_within_the_inline_window_is_answered_plain_with_no_task_row() -> None:
    async def scenario() -> tuple[object, int, float]:
        store = MemoryStore()
        started = time.monotonic()
        answer = await _runner(store).start_within(CLIENT, "chat", lambda: asyncio.sleep(0.05, _text("quick")), 5.0)
        return answer, len(store._tasks), time.monotonic() - started

    answer, rows, took = asyncio.run(scenario())
    print(f"answered plain in {took:.3f} s")
    assert isinstance(answer, types.CallToolResult) and answer.content[0].text == "quick"  # type: ignore[union-attr]
    assert rows == 0 and took < 2.0  # not the 5 s window: it returns when the call ends


def test_a_call_still_running_after_the_window_becomes_a_task_carrying_its_progress_so_far() -> None:
    async def scenario() -> tuple[dict[str, Any], TaskRow, TaskRow]:
        store = MemoryStore()

        async def call() -> types.CallToolResult:
            sink = progress.CURRENT.get()
            assert sink is not None
            for count, word in enumerate(["early ", "words "], start=1):
                await sink.report(count, word)
            await asyncio.sleep(0.3)
            await sink.report(3, "late")
            await asyncio.sleep(0.3)
            return _text("early words late")

        handle = await _runner(store).start_within(CLIENT, "chatStream", call, 0.1)
        assert isinstance(handle, dict)
        created = await store.get_task(handle["taskId"], CLIENT, _now())
        assert created is not None
        return handle, created, await _settle(store, handle["taskId"])

    handle, created, done = asyncio.run(scenario())
    assert handle["resultType"] == "task" and handle["statusMessage"] == created.status_message
    assert created.status_message == "streaming: 2 chunks, 12 chars so far\nearly words "
    assert done.status is TaskStatus.COMPLETED and done.status_message == "completed: 3 chunks"


def test_cancelling_the_request_during_the_window_cancels_the_call_and_leaves_no_row() -> None:
    async def scenario() -> tuple[bool, int]:
        store = MemoryStore()
        ended = asyncio.Event()
        cancelled = False

        async def call() -> types.CallToolResult:
            nonlocal cancelled
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
                ended.set()
            return _text("never")

        request = asyncio.create_task(_runner(store).start_within(CLIENT, "chat", call, 5.0))
        await asyncio.sleep(0.1)
        request.cancel()  # what the SDK does on notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await request
        assert ended.is_set()  # the call had ended before the request's cancellation finished
        return cancelled, len(store._tasks)

    assert asyncio.run(scenario()) == (True, 0)


def test_a_store_failing_when_the_window_has_passed_lets_the_call_finish_plain() -> None:
    async def scenario() -> object:
        store = MemoryStore()

        async def refuse(row: TaskRow) -> None:
            raise OSError("disk gone")

        store.create_task = refuse  # type: ignore[method-assign]
        return await _runner(store).start_within(CLIENT, "chat", lambda: asyncio.sleep(0.2, _text("still here")), 0.05)

    answer = asyncio.run(scenario())
    assert isinstance(answer, types.CallToolResult) and answer.content[0].text == "still here"  # type: ignore[union-attr]

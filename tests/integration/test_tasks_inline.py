"""The immediate-result shortcut and threaded task calls, through the real stack (#17 follow-ups).

A client that declares the Tasks extension but does not ask for a task with our hint gets
its call awaited for ``LLMC_TASK_INLINE_S`` first: a call that ends in that window is
answered plain (no task row), a longer one becomes a task carrying what streamed so far.
The shipped 120 s provider timeouts make every such call a task candidate (``task_after_s``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from mcp_types import CallToolResult

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TaskState, cancel_task, get_task, start_call, task_client, wait_for
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

INLINE_S = 1.5
# The emulators' providers have a 30 s total timeout; a threshold under it makes every call from
# a client that opted in a task candidate, as the shipped 120 s timeouts do with the default 30 s.
ENV = {"LLMC_TASK_POLL_MS": "200", "LLMC_TASK_LEASE_S": "2", "LLMC_TASK_AFTER_S": "10",
       "LLMC_TASK_INLINE_S": str(INLINE_S)}
CHUNK_DELAY_S = 0.05
LONG_PROMPT = " ".join(["a"] * 100)  # the emulator echoes 200 characters: about 107 deltas, 5 s or more


@pytest.fixture(scope="module")
def ibox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=CHUNK_DELAY_S, heartbeat_s=0.25, env=ENV) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _log(box: Sandbox) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (box.log_dir / "gateway.log").read_text().splitlines()]


def _lines(box: Sandbox, trace_id: str) -> list[dict[str, Any]]:
    """The ``tool_call`` lines of one call (by its trace id), after a pause a duplicate would fall in."""
    time.sleep(0.5)
    return [r for r in _log(box) if r.get("event") == "tool_call" and r.get("trace_id") == trace_id]


def _traceparent() -> tuple[str, dict[str, Any]]:
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def _tasks_created(box: Sandbox) -> int:
    return sum(1 for r in _log(box) if r.get("event") == "task_created")


def test_a_fast_call_from_an_opted_in_client_comes_back_plain_with_no_task(ibox: Sandbox) -> None:
    trace_id, meta = _traceparent()
    before = _tasks_created(ibox)

    async def scenario() -> tuple[Any, float]:
        async with task_client(ibox.url, ibox.token) as client:
            started = time.monotonic()
            answer = await client.session.call_tool("chat", {"prompt": "quick one", "provider": "openai"},
                                                    meta=meta, allow_claimed=True)  # type: ignore[arg-type]
            return answer, time.monotonic() - started

    answer, took = run(scenario())
    print(f"plain answer in {took * 1000:.0f} ms (inline window {INLINE_S} s, poll interval 200 ms)")
    assert isinstance(answer, CallToolResult), f"expected the plain result, got {answer}"
    assert answer.is_error is False and "quick one" in answer.structured_content["text"]  # type: ignore[index]
    assert took < INLINE_S  # answered when the call ended, not at the end of the window
    assert _tasks_created(ibox) == before
    assert [(r["tool"], r["outcome"]) for r in _lines(ibox, trace_id)] == [("chat", "ok")]


def test_a_slow_call_becomes_a_task_whose_progress_has_what_streamed_in_the_window(ibox: Sandbox) -> None:
    trace_id, meta = _traceparent()

    async def scenario() -> tuple[TaskHandle, float, list[TaskState], Any]:
        async with task_client(ibox.url, ibox.token) as client:
            started = time.monotonic()
            answer = await client.session.call_tool("chatStream", {"prompt": LONG_PROMPT, "provider": "openai"},
                                                    meta=meta, allow_claimed=True)  # type: ignore[arg-type]
            took = time.monotonic() - started
            assert isinstance(answer, TaskHandle), f"a plain answer after {took:.2f} s: {str(answer)[:300]}"
            handle = answer if isinstance(answer, TaskHandle) else TaskHandle.model_validate(
                answer.model_dump(by_alias=True))
            polls: list[TaskState] = []
            result = await wait_for(client.session, handle.task_id, on_poll=polls.append, timeout_s=30)
        return handle, took, polls, result

    handle, took, polls, result = run(scenario())
    first_line = (handle.status_message or "").splitlines()[0]
    print(f"task handle after {took:.2f} s: {first_line!r}")
    assert handle.status == "working" and INLINE_S <= took < INLINE_S + 2.0
    chunks_in_window = int(first_line.split()[1])
    assert first_line.startswith("streaming: ") and chunks_in_window >= 5
    assert "Hello from the" in (handle.status_message or "")
    assert polls[-1].status == "completed"
    assert result.is_error is False and result.structured_content["chunks"] > chunks_in_window
    assert [(r["tool"], r["outcome"]) for r in _lines(ibox, trace_id)] == [("chatStream", "ok")]


def test_a_client_cancelling_during_the_window_stops_the_provider_request(ibox: Sandbox) -> None:
    trace_id, meta = _traceparent()
    before = _tasks_created(ibox)
    with EmulatorControl(ibox.emulators.url("openai")) as emulator:
        emulator.reset_stats()

        async def scenario() -> float:
            async with task_client(ibox.url, ibox.token) as client:
                call = asyncio.create_task(client.session.call_tool(
                    "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"}, meta=meta,  # type: ignore[arg-type]
                    allow_claimed=True))
                await asyncio.sleep(INLINE_S / 2)  # streaming by now, still inside the window
                sent = time.time()
                call.cancel()  # on 2026-07-28 the SDK client closes the request's stream
                with pytest.raises(asyncio.CancelledError):
                    await call
            return sent

        sent = run(scenario())
        deadline = time.monotonic() + 3
        while emulator.stats()["streams_left"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = emulator.stats()
    print(f"provider stream closed {stats['last_left_at'] - sent:.3f} s after the client cancelled")
    assert stats["streams_left"] == 1 and stats["last_left_at"] - sent < 1.0
    assert _tasks_created(ibox) == before
    assert [(r["tool"], r["outcome"]) for r in _lines(ibox, trace_id)] == [("chatStream", "cancelled")]


def _turns(box: Sandbox, thread_id: str) -> int:
    async def listed() -> int:
        async with box.client(mode="2026-07-28") as client:
            result = await client.call_tool("threads", {})
        return next(t["turns"] for t in result.structured_content["threads"] if t["thread_id"] == thread_id)
    return run(listed())


def test_a_threaded_call_run_as_a_task_keeps_its_turn_when_it_completes_not_when_cancelled(ibox: Sandbox) -> None:
    async def scenario() -> tuple[str, dict[str, Any], TaskState, dict[str, Any]]:
        async with task_client(ibox.url, ibox.token) as client:
            first = await client.call_tool("chat", {"prompt": "one", "provider": "openai", "thread": "new"})
            thread_id = first.structured_content["thread_id"]  # type: ignore[index]
            kept = await start_call(client, "chatStream", {"prompt": "two", "provider": "openai",
                                                           "thread_id": thread_id})
            assert isinstance(kept, TaskHandle)
            second = await wait_for(client.session, kept.task_id, timeout_s=30)
            dropped = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai",
                                                              "thread_id": thread_id})
            assert isinstance(dropped, TaskHandle)
            await asyncio.sleep(0.5)
            await cancel_task(client.session, dropped.task_id)
            state = await get_task(client.session, dropped.task_id)
            while state.status == "working":
                await asyncio.sleep(0.1)
                state = await get_task(client.session, dropped.task_id)
            third = await start_call(client, "chat", {"prompt": "three", "provider": "openai",
                                                      "thread_id": thread_id})
            assert isinstance(third, TaskHandle)
            after = await wait_for(client.session, third.task_id, timeout_s=30)
        return thread_id, second.structured_content or {}, state, after.structured_content or {}

    thread_id, second, cancelled, third = run(scenario())
    print("turns:", second["thread"], cancelled.status, third["thread"])
    assert second["thread"]["turn"] == 1 and second["thread"]["turns"] == 2
    assert cancelled.status == "cancelled"
    assert third["thread"]["turn"] == 2 and third["thread"]["turns"] == 3  # the cancelled turn was not kept
    assert _turns(ibox, thread_id) == 3

"""Tasks across a gateway restart: results kept in the store survive, a call cut off is failed, never re-run.

Uses the default store (SQLite in the sandbox's run folder), the one that outlives the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TaskState, get_task, start_call, task_client, wait_for
from tests.integration.conftest import process_pid, run

LONG_PROMPT = " ".join(["a"] * 100)  # about 107 deltas at 0.2 s: a call of about 20 s
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture(scope="module")
def rbox() -> Iterator[Sandbox]:
    env = {"LLMC_TASK_POLL_MS": "200", "LLMC_TASK_LEASE_S": "2"}
    with Sandbox(chunk_delay_s=0.2, heartbeat_s=0.25, env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


async def _started(box: Sandbox, tool: str, arguments: dict[str, object]) -> TaskHandle:
    async with task_client(box.url, box.token) as client:
        handle = await start_call(client, tool, arguments)
    assert isinstance(handle, TaskHandle), handle
    return handle


def test_a_gateway_restart_keeps_results_and_fails_the_call_it_cut_off(rbox: Sandbox) -> None:
    async def before() -> tuple[str, str, object]:
        done = await _started(rbox, "chat", {"prompt": "keep me", "provider": "openai"})
        async with task_client(rbox.url, rbox.token) as client:
            result = await wait_for(client.session, done.task_id, timeout_s=30)
            running = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
            assert isinstance(running, TaskHandle)
            state = await get_task(client.session, running.task_id)
            while " 0 chunks" in (state.status_message or " 0 chunks"):
                await asyncio.sleep(0.2)
                state = await get_task(client.session, running.task_id)
        return done.task_id, running.task_id, result

    async def after(done_id: str, cut_id: str) -> tuple[object, TaskState]:
        async with task_client(rbox.url, rbox.token) as client:
            kept = await wait_for(client.session, done_id, timeout_s=5)
            state = await get_task(client.session, cut_id)
            for _ in range(50):  # a clean stop fails it at once; a killed gateway's lease runs out in 2 s
                if state.status != "working":
                    break
                await asyncio.sleep(0.2)
                state = await get_task(client.session, cut_id)
        return kept, state

    with EmulatorControl(rbox.emulators.url("openai")) as emulator:
        emulator.reset_stats()
        done_id, cut_id, result = run(before())
        rbox.stack.restart_worker("gateway")
        rbox.stack.wait_ready()
        rbox.wait_workers_up()
        kept, cut = run(after(done_id, cut_id))
        asyncio.run(asyncio.sleep(3))  # a re-run would have reached the emulator by now
        requests = emulator.stats()["by_path"].get(COMPLETIONS, 0)
    assert kept == result
    assert cut.status == "failed" and cut.error is not None and cut.error["code"] == -32603
    assert cut.status_message == ("the gateway running this call stopped; the call was not re-run, "
                                  "since calls cost money")
    assert requests == 2  # the kept call and the cut-off one, each once


def test_a_task_whose_worker_dies_mid_call_is_failed_with_the_reason_and_not_re_run(rbox: Sandbox) -> None:
    async def started() -> str:
        async with task_client(rbox.url, rbox.token) as client:
            running = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
            assert isinstance(running, TaskHandle)
            state = await get_task(client.session, running.task_id)
            while " 0 chunks" in (state.status_message or " 0 chunks"):
                await asyncio.sleep(0.2)
                state = await get_task(client.session, running.task_id)
        return running.task_id

    async def ended(task_id: str) -> TaskState:
        async with task_client(rbox.url, rbox.token) as client:
            state = await get_task(client.session, task_id)
            for _ in range(100):
                if state.status != "working":
                    break
                await asyncio.sleep(0.2)
                state = await get_task(client.session, task_id)
        return state

    with EmulatorControl(rbox.emulators.url("openai")) as emulator:
        emulator.reset_stats()
        task_id = run(started())
        os.kill(process_pid(rbox, "worker-openai"), signal.SIGKILL)
        state = run(ended(task_id))
        rbox.wait_workers_up()
        asyncio.run(asyncio.sleep(3))  # a re-run would have reached the emulator by now
        requests = emulator.stats()["by_path"].get(COMPLETIONS, 0)
    print("worker killed mid-task:", state.status, state.status_message)
    assert state.status == "failed" and state.error is not None and state.error["code"] == -32603
    lost = state.error["data"]  # the tool error: worker_lost, or stream_interrupted caused by it
    assert "worker_lost" in (lost["type"], lost.get("cause")), lost
    assert state.status_message is not None and "the call was not repeated" in state.status_message
    assert requests == 1  # the call reached the provider once and was not sent again

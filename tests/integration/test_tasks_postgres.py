"""Two gateways, one team (#17): a task made through one gateway, polled and cancelled through the other.

Two sandboxes (each its own gateway, workers and emulators) share a fresh database on the
test session's PostgreSQL server, and both registries name the client alike (``demo``), as
one team's would. The gateway that runs a call writes its progress and outcome to the
store; the other reads them there. A cancel through the other gateway is a flag in the
store that the running gateway polls for (every 0.5 s) and turns into a local cancel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TaskState, cancel_task, get_task, start_call, task_client, wait_for
from tests.integration.conftest import run
from tests.pg_server import PgServer

pytestmark = pytest.mark.integration

LONG_PROMPT = " ".join(["a"] * 100)  # the emulator echoes 200 characters: about 107 deltas


@pytest.fixture(scope="module")
def pair(pg_server: PgServer) -> Iterator[tuple[Sandbox, Sandbox]]:
    url, settings = pg_server.fresh_database()
    env = {"LLMC_STORE_URL": url, "LLMC_STORE_PASSWORD_FILE": str(settings.password_file),
           "LLMC_TASK_POLL_MS": "200", "LLMC_TASK_LEASE_S": "2"}
    with Sandbox(chunk_delay_s=0.05, heartbeat_s=0.25, run_providers=("openai",), env=env) as one, \
            Sandbox(chunk_delay_s=0.05, heartbeat_s=0.25, run_providers=("openai",), env=env) as two:
        one.wait_workers_up()
        two.wait_workers_up()
        yield one, two


async def _start_long(box: Sandbox) -> TaskHandle:
    async with task_client(box.url, box.token) as client:
        handle = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
    assert isinstance(handle, TaskHandle), handle
    return handle


async def _streaming(box: Sandbox, task_id: str) -> TaskState:
    """Poll ``task_id`` through ``box`` until its status message shows streamed text."""
    async with task_client(box.url, box.token) as client:
        deadline = time.monotonic() + 15
        while True:
            state = await get_task(client.session, task_id)
            message = state.status_message or ""
            if message.startswith("streaming: ") and " 0 chunks" not in message:
                return state
            assert state.status == "working" and time.monotonic() < deadline, state
            await asyncio.sleep(0.1)


def test_a_task_made_through_one_gateway_is_polled_to_its_result_through_the_other(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair

    async def scenario() -> tuple[TaskState, list[TaskState], object]:
        handle = await _start_long(one)
        streaming = await _streaming(two, handle.task_id)
        polls: list[TaskState] = []
        async with task_client(two.url, two.token) as client:
            result = await wait_for(client.session, handle.task_id, on_poll=polls.append, timeout_s=30)
        return streaming, polls, result

    streaming, polls, result = run(scenario())
    print("through the other gateway:", (streaming.status_message or "").splitlines()[0], "->",
          polls[-1].status_message)
    assert (streaming.status_message or "").split("\n", 1)[1].startswith("Hello")  # the text so far
    assert polls[-1].status == "completed"
    assert result.is_error is False and LONG_PROMPT in result.structured_content["text"]  # type: ignore[attr-defined]


def test_a_cancel_through_the_other_gateway_stops_the_provider_request_within_a_second(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    with EmulatorControl(one.emulators.url("openai")) as emulator:
        emulator.reset_stats()

        async def scenario() -> tuple[float, TaskState]:
            handle = await _start_long(one)
            await _streaming(two, handle.task_id)
            async with task_client(two.url, two.token) as client:
                sent = time.time()
                await cancel_task(client.session, handle.task_id)
                state = await get_task(client.session, handle.task_id)
                deadline = time.monotonic() + 10
                while state.status == "working" and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    state = await get_task(client.session, handle.task_id)
            return sent, state

        sent, state = run(scenario())
        stats = emulator.stats()
    print(f"provider stream at gateway one closed {stats['last_left_at'] - sent:.3f} s after tasks/cancel "
          "through gateway two")
    assert (state.status, state.result, state.error) == ("cancelled", None, None)
    assert stats["streams_left"] == 1 and stats["last_left_at"] - sent < 1.0

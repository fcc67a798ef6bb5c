"""A ~90 s streamed call done as an MCP task while its client goes away and comes back.

The emulator paces its stream (0.85 s a chunk, about 107 chunks); the client polls a while,
closes its session, and a new session with the same token picks the task up by its id.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TaskState, get_task, start_call, task_client, wait_for
from tests.integration.conftest import run

CHUNK_DELAY_S = 0.85
LONG_PROMPT = " ".join(["a"] * 100)  # the emulator echoes 200 characters: about 107 deltas
_PROGRESS = re.compile(r"^streaming: (\d+) chunks, (\d+) chars so far\n")


@pytest.fixture(scope="module")
def slow_box() -> Iterator[Sandbox]:
    env = {"LLMC_TASK_POLL_MS": "1000"}  # the default store: SQLite in the run folder
    with Sandbox(chunk_delay_s=CHUNK_DELAY_S, heartbeat_s=0.5, env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _chunks(state: TaskState) -> int:
    match = _PROGRESS.match(state.status_message or "")
    return int(match.group(1)) if match else 0


def test_a_90_s_stream_survives_the_client_leaving_and_coming_back(slow_box: Sandbox) -> None:
    async def first_session() -> tuple[str, list[TaskState]]:
        async with task_client(slow_box.url, slow_box.token) as client:
            handle = await start_call(client, "chatStream",
                                      {"prompt": LONG_PROMPT, "provider": "openai", "timeout_s": 600})
            assert isinstance(handle, TaskHandle)
            seen = []
            for _ in range(5):
                await asyncio.sleep(handle.poll_interval_ms / 1000 if handle.poll_interval_ms else 1)
                seen.append(await get_task(client.session, handle.task_id))
        return handle.task_id, seen

    async def second_session(task_id: str) -> tuple[list[TaskState], object]:
        async with task_client(slow_box.url, slow_box.token) as client:
            polls: list[TaskState] = []
            result = await wait_for(client.session, task_id, on_poll=polls.append, timeout_s=240)
        return polls, result

    started = time.monotonic()
    task_id, seen = run(first_session())
    time.sleep(20)  # nobody is connected: the call runs on in the gateway
    polls, result = run(second_session(task_id))
    took = time.monotonic() - started
    print(f"task took {took:.1f} s; chunks seen by the first session {[_chunks(s) for s in seen]}, "
          f"on reconnecting {_chunks(polls[0])}")
    assert all(s.status == "working" for s in seen) and _chunks(seen[-1]) > _chunks(seen[0]) > 0
    assert "Hello from the OpenAI emulator" in (seen[-1].status_message or "")
    assert polls[0].status == "working" and _chunks(polls[0]) > _chunks(seen[-1])
    assert took > 80
    structured = getattr(result, "structured_content", None) or {}
    assert structured["chunks"] >= 100 and structured["text"].endswith("a a a")

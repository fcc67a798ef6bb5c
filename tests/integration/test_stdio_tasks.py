"""MCP Tasks through ``llm-caller stdio``: the official SDK client over STDIO, the tasks runtime.

The front end relays: a call from a STDIO request that declares the extension goes upstream
through a client that declares it too, the gateway's ``CreateTaskResult`` comes back as it
is, and ``tasks/get`` / ``tasks/cancel`` are forwarded (with ``Mcp-Name``). The gateway still
decides; a STDIO client that did not declare the extension gets plain results and -32021.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from cli.stack import REPO_ROOT
from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TasksExtension, TaskState, cancel_task, get_task, start_call, wait_for
from tests.integration.conftest import run
from tests.integration.security_helpers import base_url
from tests.integration.test_stdio import COMMAND

pytestmark = pytest.mark.integration

LONG_PROMPT = " ".join(["a"] * 100)  # the emulator echoes 200 characters: about 107 deltas
ENV = {"LLMC_TASK_POLL_MS": "200", "LLMC_TASK_LEASE_S": "2", "LLMC_TASK_AFTER_S": "10", "LLMC_TASK_INLINE_S": "1"}


@pytest.fixture(scope="module")
def sbox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.05, heartbeat_s=0.25, env=ENV) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@asynccontextmanager
async def front(box: Sandbox, tasks: bool = True) -> AsyncIterator[Client]:
    env = {"LLMC_GATEWAY_URL": base_url(box), "LLMC_TOKEN": box.token}
    params = StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=env, cwd=REPO_ROOT)
    with tempfile.TemporaryFile("w+") as errlog:
        try:
            async with Client(stdio_client(params, errlog=errlog), mode="2026-07-28",
                              extensions=[TasksExtension()] if tasks else None) as client:
                yield client
        finally:
            errlog.seek(0)
            print("front end stderr:", errlog.read()[-2000:])  # warnings and errors only


async def _until_streaming(client: Client, task_id: str) -> TaskState:
    deadline = time.monotonic() + 15
    while True:
        state = await get_task(client.session, task_id)
        if (state.status_message or "").startswith("streaming: ") and " 0 chunks" not in (state.status_message or ""):
            return state
        assert state.status == "working" and time.monotonic() < deadline, state
        await asyncio.sleep(0.1)


def test_a_task_over_stdio_shows_progress_and_completes_and_another_is_cancelled(sbox: Sandbox) -> None:
    with EmulatorControl(sbox.emulators.url("openai")) as emulator:
        emulator.reset_stats()

        async def scenario() -> tuple[TaskHandle, TaskState, Any, float, TaskState]:
            async with front(sbox) as client:
                handle = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
                assert isinstance(handle, TaskHandle), handle
                streaming = await _until_streaming(client, handle.task_id)
                result = await wait_for(client.session, handle.task_id, timeout_s=30)
                other = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
                assert isinstance(other, TaskHandle), other
                await _until_streaming(client, other.task_id)
                sent = time.time()
                await cancel_task(client.session, other.task_id)
                state = await get_task(client.session, other.task_id)
                while state.status == "working":
                    await asyncio.sleep(0.1)
                    state = await get_task(client.session, other.task_id)
            return handle, streaming, result, sent, state

        handle, streaming, result, sent, cancelled = run(scenario())
        stats = emulator.stats()
    print("over STDIO:", (streaming.status_message or "").splitlines()[0], "| result chunks",
          result.structured_content["chunks"], f"| stream closed {stats['last_left_at'] - sent:.3f} s after cancel")
    assert handle.status == "working" and handle.poll_interval_ms == 200
    assert result.is_error is False and LONG_PROMPT in result.structured_content["text"]
    assert cancelled.status == "cancelled"
    assert stats["streams_left"] == 1 and stats["last_left_at"] - sent < 1.0


def test_over_stdio_a_fast_call_is_plain_and_a_client_that_did_not_opt_in_gets_32021(sbox: Sandbox) -> None:
    async def scenario() -> tuple[Any, Any, MCPError, MCPError]:
        async with front(sbox) as client:
            quick = await start_call(client, "chat", {"prompt": "quick", "provider": "openai"}, ask_for_task=False)
            handle = await start_call(client, "chat", {"prompt": "mine"})
            assert isinstance(handle, TaskHandle)
            with pytest.raises(MCPError) as unknown:
                await get_task(client.session, "no-such-task")
        async with front(sbox, tasks=False) as plain:
            asked = await plain.call_tool("chat", {"prompt": "asked", "timeout_s": 600},
                                          meta={"llm-caller/task": True})  # type: ignore[arg-type]
            with pytest.raises(MCPError) as refused:
                await get_task(plain.session, handle.task_id)
        return quick, asked, unknown.value, refused.value

    quick, asked, unknown, refused = run(scenario())
    assert isinstance(quick, CallToolResult) and "quick" in quick.structured_content["text"]  # type: ignore[index]
    assert isinstance(asked, CallToolResult) and "asked" in asked.structured_content["text"]  # type: ignore[index]
    assert unknown.code == -32602  # the gateway's answer, passed through
    assert refused.code == -32021
    assert refused.data == {"requiredCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}

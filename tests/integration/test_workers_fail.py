"""Workers restarted or killed under the gateway: it stays up and says what happened."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from cli.stack import SUPERVISORD_CONF, scrubbed_environment
from harness.sandbox import Sandbox
from tests.integration.conftest import clear_faults, inject, process_pid, run

pytestmark = pytest.mark.integration


def test_supervisorctl_restart_keeps_gateway_up_and_next_call_is_served(box: Sandbox) -> None:
    gateway_pid = process_pid(box, "gateway")
    worker_pid = process_pid(box, "worker-openai")
    command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF),
               "restart", "worker-openai"]
    out = subprocess.run(command, env=scrubbed_environment(box.stack.settings), capture_output=True,
                         text=True, check=True)
    assert "started" in out.stdout
    assert process_pid(box, "worker-openai") != worker_pid

    async def scenario() -> None:
        async with box.client() as client:
            reply = await client.call_tool("chat", {"prompt": "after restart", "provider": "openai"})
            health = await client.call_tool("getHealth", {})
        assert not reply.is_error, reply.content
        assert health.structured_content is not None
        openai = next(w for w in health.structured_content["workers"] if w["provider"] == "openai")
        assert openai["up"] and openai["restarts_seen"] >= 1

    run(scenario())
    assert process_pid(box, "gateway") == gateway_pid


def test_worker_killed_mid_stream_gives_clear_error_and_no_hang(box: Sandbox) -> None:
    gateway_pid = process_pid(box, "gateway")
    # Two chunks, then the emulator goes silent: the stream is open when we kill the worker.
    inject(box, "openai", {"path": "/v1/chat/completions", "mode": "silent_stream", "after_chunks": 2})

    async def scenario() -> tuple[object, float, list[str]]:
        deltas: list[str] = []
        first_chunk = asyncio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            deltas.append(message or "")
            first_chunk.set()

        async with box.client() as client:
            call = asyncio.create_task(client.call_tool(
                "chatStream", {"prompt": "a long story please", "provider": "openai"}, progress_callback=on_progress))
            await asyncio.wait_for(first_chunk.wait(), 10)
            os.kill(process_pid(box, "worker-openai"), signal.SIGKILL)
            killed = time.monotonic()
            result = await asyncio.wait_for(call, 15)
            return result, time.monotonic() - killed, deltas

    try:
        result, elapsed, deltas = run(scenario())
    finally:
        clear_faults(box)
    assert result.is_error, result  # type: ignore[attr-defined]
    error = result.structured_content["error"]  # type: ignore[attr-defined]
    assert error["type"] == "stream_interrupted" and error["retryable"]
    assert "worker_lost" in error["message"] and "not repeated" in error["message"]
    assert error["partial_text"] == "".join(deltas) and deltas
    assert elapsed < 5, f"took {elapsed:.1f}s to report the dead worker"
    assert process_pid(box, "gateway") == gateway_pid
    box.wait_workers_up()

    async def after() -> None:
        async with box.client() as client:
            reply = await client.call_tool("chat", {"prompt": "alive?", "provider": "openai"})
        assert not reply.is_error, reply.content

    run(after())

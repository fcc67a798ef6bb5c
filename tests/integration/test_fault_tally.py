"""The retry counters match the injected faults exactly (issue 13, "how to show it is done").

Through the real stack with the official MCP client: a small fixed schedule of faults
(5 x 429, 3 x in-stream errors after text, 2 x connection closed mid-headers) and the
calls that meet them; then the OpenAI worker's getHealth counters must equal what the
emulator counted, term by term, and the soak's tally (``bench.fault_tally``) must hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bench.fault_tally import fault_tally
from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

CHAT_PATH = "/v1/chat/completions"


def _tune(providers: dict[str, Any]) -> None:
    for config in providers["providers"].values():
        config["retry"] = {"base_delay_s": 0.01, "max_delay_s": 0.05, "max_attempts": 3}
        config["circuit"] = {"failure_threshold": 100}  # every fault must meet a call, not a closed door


@pytest.fixture(scope="module")
def tbox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.0, heartbeat_s=0.2, tweak=_tune) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


async def _call(box: Sandbox, tool: str) -> str:
    """One call; its outcome: ``ok`` or the taxonomy error type."""
    async with box.client() as client:
        if tool == "chatStream":
            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                return None

            result = await client.call_tool(tool, {"prompt": "hello"}, progress_callback=on_progress)
        else:
            result = await client.call_tool(tool, {"prompt": "hello"})
    if not result.is_error:
        return "ok"
    return str((result.structured_content or {})["error"]["type"])


async def _settled(box: Sandbox, control: EmulatorControl) -> tuple[dict[str, Any], dict[str, int]]:
    """Emulator stats and the OpenAI worker's counters, once a later heartbeat changed nothing."""
    previous: tuple[Any, ...] | None = None
    for _ in range(50):
        async with box.client() as client:
            health = (await client.call_tool("getHealth", {})).structured_content or {}
        worker = next(w for w in health["workers"] if w["provider"] == "openai")
        reading = (control.stats(), worker["counters"])
        if reading == previous and worker["inflight"] == 0:
            return reading
        previous = reading
        await asyncio.sleep(4 * box.heartbeat_s)
    raise AssertionError(f"the counters never settled: {previous}")


def test_counters_equal_a_fixed_fault_schedule(tbox: Sandbox) -> None:
    with EmulatorControl(tbox.emulators.url("openai")) as control:
        control.reset()
        outcomes: list[str] = []
        # chat A meets three 429s: two retries, then it gives up (max_attempts 3); chat B two: ok.
        control.add_faults({"mode": "status", "status": 429, "headers": {"retry-after": "0"}, "times": 5,
                            "path": CHAT_PATH})
        outcomes += [run(_call(tbox, "chat")), run(_call(tbox, "chat"))]
        # Three streams that fail after their first text: stream_interrupted, never retried.
        control.add_faults({"mode": "error_event", "after_chunks": 1, "times": 3, "path": CHAT_PATH})
        outcomes += [run(_call(tbox, "chatStream")) for _ in range(3)]
        # One stream whose first two connections close mid-headers: retried twice, then ok.
        control.add_faults({"mode": "close_mid_headers", "times": 2, "path": CHAT_PATH})
        outcomes.append(run(_call(tbox, "chatStream")))
        assert control.pending_faults() == []
        stats, counters = run(_settled(tbox, control))

    assert outcomes == ["rate_limited", "ok", *["stream_interrupted"] * 3, "ok"]
    assert stats["faults"] == 10
    assert stats["faults_by_mode"] == {"status": 5, "error_event": 3, "close_mid_headers": 2}
    assert {k: counters[k] for k in ("attempts", "retries", "failed_attempts", "gave_up", "retry_dropped",
                                     "refused", "cancelled")} == {
        "attempts": 6, "retries": 6, "failed_attempts": 10, "gave_up": 4, "retry_dropped": 0,
        "refused": 0, "cancelled": 0}
    failed = sum(1 for o in outcomes if o != "ok")
    tally = fault_tally(stats, 0, 0, counters, failed)
    assert tally["holds"], tally["equations"]

"""Health tells the truth when a provider's server is down (issue 13, item 3).

LM Studio is served by an emulator of its own on a fixed port that the test stops and
starts: first never started, then started, stopped (killed) and started again. Through the
real stack with the official MCP client: consecutive failed connections make the worker
``degraded`` with the error and since when, the circuit opens, the gateway status follows,
a call says the provider is unreachable and where; a probe notices the recovery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.process import SingleEmulator
from harness.sandbox import Sandbox, free_port
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

_PORT = free_port()
_URL = f"http://127.0.0.1:{_PORT}"


def _tune(providers: dict[str, Any]) -> None:
    lmstudio = providers["providers"]["lmstudio"]
    lmstudio["base_url"] = _URL  # nothing listens there yet
    lmstudio["discovery_interval_s"] = 30
    lmstudio["circuit"] = {"unreachable_after": 3, "probe_interval_s": 0.5}
    lmstudio["retry"] = {"base_delay_s": 0.01, "max_delay_s": 0.05}


@pytest.fixture(scope="module")
def dbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, SingleEmulator]]:
    server = SingleEmulator("lmstudio", _PORT, Path(tmp_path_factory.mktemp("lmstudio")))
    try:
        with Sandbox(heartbeat_s=0.2, tweak=_tune) as sandbox:
            sandbox.wait_workers_up()
            yield sandbox, server
    finally:
        server.stop()


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with box.client() as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    return result.structured_content


async def _until(box: Sandbox, want: Callable[[dict[str, Any]], bool], timeout_s: float
                 ) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Poll getHealth until the lmstudio worker satisfies ``want``: (seconds taken, worker, health)."""
    started = time.monotonic()
    async with box.client() as client:
        while True:
            result = await client.call_tool("getHealth", {})
            health = result.structured_content or {}
            worker = next(w for w in health["workers"] if w["provider"] == "lmstudio")
            if want(worker):
                return time.monotonic() - started, worker, health
            assert time.monotonic() - started < timeout_s, f"not reached in {timeout_s}s: {worker}"
            await asyncio.sleep(0.1)


def _degraded(worker: dict[str, Any]) -> bool:
    return bool(worker["up"] and worker["status"] == "degraded")


def _ready_with_models(worker: dict[str, Any]) -> bool:
    return bool(worker["up"] and worker["status"] == "ready" and worker["models"])


def _check_degraded(worker: dict[str, Any], health: dict[str, Any]) -> None:
    assert worker["up"] and worker["last_error"] == "connection"
    assert f"unreachable at {_URL}" in worker["reason"] and worker["degraded_since"]
    assert worker["circuit"]["state"] == "open"
    assert health["status"] == "degraded"  # openai and anthropic still serve


def _check_unreachable_call(out: dict[str, Any]) -> None:
    error = out["error"]
    assert error["type"] == "unavailable" and error["retryable"], error
    assert "lmstudio is unreachable at" in error["message"] and _URL in error["message"], error
    assert "no model configured" not in error["message"]


def test_a_stopped_provider_makes_health_degraded_and_a_probe_sees_it_back(
        dbox: tuple[Sandbox, SingleEmulator]) -> None:
    box, server = dbox
    # 1. Never started: discovery probes fail to connect.
    took, worker, health = run(_until(box, _degraded, 30))
    print(f"\nnever started: degraded after {took:.1f}s of polling: {worker['reason']!r} "
          f"since {worker['degraded_since']}; gateway {health['status']}")
    _check_degraded(worker, health)
    out = run(_call(box, "chat", {"prompt": "hi", "provider": "lmstudio"}))
    print(f"chat while never started: {out['error']['type']}: {out['error']['message']}")
    _check_unreachable_call(out)

    # 2. Started: a probe notices, the models are discovered, calls work.
    server.start()
    took, worker, health = run(_until(box, _ready_with_models, 30))
    print(f"started: ready with {len(worker['models'])} models after {took:.1f}s; gateway {health['status']}")
    assert worker["reason"] is None and worker["degraded_since"] is None and worker["circuit"]["state"] == "closed"
    assert worker["last_error"] is None
    assert health["status"] == "ok"
    out = run(_call(box, "chat", {"prompt": "hi", "provider": "lmstudio"}))
    assert "error" not in out, out

    # 3. Stopped while in use: the calls' failed connections make it unreachable at once.
    server.stop()
    started = time.monotonic()
    out = run(_call(box, "chat", {"prompt": "hi", "provider": "lmstudio"}))
    print(f"first call after the stop: {out['error']['type']} in {time.monotonic() - started:.2f}s")
    assert out["error"]["type"] in ("connection", "unavailable"), out
    assert f"lmstudio at {_URL}: connection refused" in out["error"]["message"] or _URL in out["error"]["message"]
    took, worker, health = run(_until(box, _degraded, 30))
    print(f"stopped: degraded {took:.1f}s after the first failed call: {worker['reason']!r}")
    _check_degraded(worker, health)
    started = time.monotonic()
    out = run(_call(box, "chat", {"prompt": "hi", "provider": "lmstudio", "model": "qwen2.5-7b-instruct"}))
    print(f"next call fails fast in {time.monotonic() - started:.2f}s: {out['error']['message']}")
    _check_unreachable_call(out)

    # 4. Restarted on the same port: the probe sees it, the circuit closes, calls work again.
    server.start()
    took, worker, health = run(_until(box, lambda w: w["up"] and w["status"] == "ready", 30))
    print(f"restarted: ready after {took:.1f}s; circuit {worker['circuit']['state']}; gateway {health['status']}")
    assert worker["circuit"]["state"] == "closed" and health["status"] == "ok"
    out = run(_call(box, "chat", {"prompt": "hi", "provider": "lmstudio"}))
    assert "error" not in out, out

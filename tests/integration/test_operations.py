"""Operations through the real stack: extra provider workers, model discovery, status, log rotation."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from tests.integration.conftest import run
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def _second_lmstudio(providers: dict[str, Any]) -> None:
    lmstudio = providers["providers"]["lmstudio"]
    lmstudio["discovery_interval_s"] = 1
    providers["providers"]["lmstudio-2"] = {**lmstudio, "priority": 200}


@pytest.fixture(scope="module")
def obox() -> Iterator[Sandbox]:
    env = {"LLMC_LOG_MAX_BYTES": "4KB", "LLMC_LOG_BACKUPS": "2", "LLMC_LOG_LEVEL_WORKER_ANTHROPIC": "DEBUG"}
    with Sandbox(heartbeat_s=0.25, tweak=_second_lmstudio, env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


async def _health(box: Sandbox, **arguments: Any) -> dict[str, dict[str, Any]]:
    async with box.client() as client:
        result = await client.call_tool("getHealth", arguments)
    assert result.structured_content is not None
    return {w["provider"]: w for w in result.structured_content["workers"]}


def _lm_models(box: Sandbox, models: list[dict[str, Any]]) -> None:
    httpx.put(f"{box.emulators.url('lmstudio')}/_emulator/models", json={"data": models}).raise_for_status()


def test_a_provider_under_any_name_gets_its_own_supervised_worker(obox: Sandbox) -> None:
    workers = run(_health(obox))
    assert workers["lmstudio-2"]["up"] and workers["lmstudio-2"]["status"] == "ready"
    info = obox.stack.rpc().supervisor.getProcessInfo("worker-lmstudio-2")
    assert info["statename"] == "RUNNING"

    async def chat() -> dict[str, Any]:
        async with obox.client() as client:
            result = await client.call_tool("chat", {"prompt": "hi", "provider": "lmstudio-2"})
        assert result.structured_content is not None
        return result.structured_content

    assert run(chat())["provider"] == "lmstudio-2"
    obox.stack.restart_worker("lmstudio-2")
    obox.wait_workers_up()


def test_discovered_models_appear_and_disappear(obox: Sandbox) -> None:
    _lm_models(obox, [{"id": "fresh-model-7b", "type": "llm", "state": "loaded"},
                      {"id": "nomic-embed-text-v1.5", "type": "embeddings", "state": "loaded"}])
    deadline = time.monotonic() + 5
    while "fresh-model-7b" not in {m["id"] for m in run(_health(obox))["lmstudio"]["models"]}:
        assert time.monotonic() < deadline, "the new model was not discovered on the interval"
        time.sleep(0.2)

    async def chat(model: str) -> dict[str, Any]:
        async with obox.client() as client:
            result = await client.call_tool("chat", {"prompt": "hi", "model": model})
        assert result.structured_content is not None
        return result.structured_content

    assert run(chat("fresh-model-7b"))["provider"] == "lmstudio"
    _lm_models(obox, [{"id": "nomic-embed-text-v1.5", "type": "embeddings", "state": "loaded"},
                      {"id": "fresh-model-7b", "type": "llm", "state": "not-loaded"}])
    workers = run(_health(obox, refresh_models=True))  # on demand, not waiting for the interval
    fresh = next(m for m in workers["lmstudio"]["models"] if m["id"] == "fresh-model-7b")
    assert fresh["loaded"] is False
    refused = run(chat("fresh-model-7b"))["error"]
    assert refused["type"] == "unavailable" and "not loaded" in refused["message"]
    _lm_models(obox, [])
    workers = run(_health(obox, refresh_models=True))
    assert workers["lmstudio"]["models"] == []


def test_status_shows_processes_and_worker_health(obox: Sandbox) -> None:
    settings = obox.stack.settings
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "--run-dir", str(settings.run_dir),
         "--port", str(settings.port), "--config-dir", str(settings.config_dir)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=True).stdout
    assert "gateway" in out and "RUNNING" in out and "worker-lmstudio-2" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "up" in lines["openai"] and "closed" in lines["openai"]


def _restart(box: Sandbox, name: str) -> subprocess.CompletedProcess[str]:
    settings = box.stack.settings
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "restart", name, "--run-dir", str(settings.run_dir),
         "--port", str(settings.port), "--config-dir", str(settings.config_dir)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)


def test_restart_takes_a_worker_by_either_name_and_lists_valid_names(obox: Sandbox) -> None:
    rpc = obox.stack.rpc().supervisor
    for name in ("lmstudio", "worker-lmstudio", "workers:lmstudio"):  # the last: the name before worker-NAME
        before = rpc.getProcessInfo("worker-lmstudio")["pid"]
        done = _restart(obox, name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "llm-caller: restarted worker-lmstudio"
        assert rpc.getProcessInfo("worker-lmstudio")["pid"] != before
    wrong = _restart(obox, "foo")
    print(wrong.stderr)
    assert wrong.returncode == 1 and "BAD_NAME" not in wrong.stderr
    assert "no process named 'foo'; valid names: anthropic, gateway, lmstudio, lmstudio-2, openai" in wrong.stderr
    assert _restart(obox, "worker-gateway").returncode == 1  # the gateway is not a worker
    obox.wait_workers_up()


def _gateway_logs(box: Sandbox) -> list[str]:
    return sorted(p.name for p in box.log_dir.glob("gateway.log*"))


def _anthropic_log(box: Sandbox) -> str:
    """The anthropic worker's log with its rotated files."""
    return "".join(p.read_text() for p in box.log_dir.glob("worker-anthropic.log*"))


def test_logs_rotate_and_keep_only_the_configured_backups(obox: Sandbox) -> None:
    async def many() -> None:
        async with obox.client() as client:
            for index in range(60):
                await client.call_tool("chat", {"prompt": f"rotate {index}", "provider": "anthropic"})

    run(many())
    rotated = ["gateway.log", "gateway.log.1", "gateway.log.2"]
    wait_until(lambda: _gateway_logs(obox) == rotated and '"level":"debug"' in _anthropic_log(obox), 5,
               f"the gateway's log files are {rotated} and the anthropic worker logged at debug level")
    # supervisord rotates after a write that crosses the limit, and the log thread writes the
    # lines of one 50 ms window at once (D18): a file may overshoot by one such write.
    assert all(p.stat().st_size <= 4096 + 16 * 1024 for p in obox.log_dir.glob("gateway.log*"))
    assert '"level":"debug"' in _anthropic_log(obox)  # the per-process level override reached that worker only
    assert '"level":"debug"' not in (obox.log_dir / "worker-openai.log").read_text()

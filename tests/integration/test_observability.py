"""Logs, metrics and traces from the real stack."""

from __future__ import annotations

import httpx
import orjson
import pytest

from harness.sandbox import Sandbox
from tests.integration.conftest import run
from tests.polling import wait_until

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _metrics(box: Sandbox) -> str:
    response = httpx.get(f"http://127.0.0.1:{box.stack.settings.port}/metrics")
    assert response.status_code == 200
    return response.text


def _sample(text: str, prefix: str, *, required: bool = True) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines or not required, f"no sample starting {prefix!r}"
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def _log_records(box: Sandbox) -> list[dict[str, object]]:
    """Every line of the gateway's and the starter workers' logs, each checked to be JSON."""
    records = []
    for name in ("gateway.log", "worker-openai.log", "worker-anthropic.log", "worker-lmstudio.log"):
        text = (box.log_dir / name).read_text()
        for line in text[:text.rfind("\n") + 1].splitlines():  # a line still being written waits
            record = orjson.loads(line)  # every line parses
            assert {"ts", "level", "process", "event"} <= set(record), record
            records.append(record)
    return records


def _both_calls_logged(box: Sandbox) -> list[dict[str, object]]:
    calls = [r for r in _log_records(box) if r["event"] == "tool_call"]
    done = any(c["provider"] == "anthropic" and c["outcome"] == "ok" for c in calls) and any(
        c["outcome"] == "not_found" for c in calls)
    return calls if done else []


def test_every_log_line_is_json_with_the_required_fields(box: Sandbox) -> None:
    async def scenario() -> None:
        async with box.client() as client:
            await client.call_tool("chat", {"prompt": "log me", "provider": "anthropic"})
            await client.call_tool("chat", {"prompt": "x", "provider": "nope"})

    run(scenario())
    # Wait for the lines themselves: a count of lines can be met by earlier calls' lines
    # (the sandbox's own readiness calls), which the log writer gathers and writes late.
    calls = wait_until(lambda: _both_calls_logged(box), 5, "both calls' tool_call lines are in gateway.log")
    ok = next(c for c in calls if c["provider"] == "anthropic" and c["outcome"] == "ok")
    assert {"client", "tool", "model", "latency_ms", "request_id", "trace_id"} <= set(ok)
    failed = next(c for c in calls if c["outcome"] == "not_found")
    assert failed["error_class"] == "not_found" and failed["client"] == "demo"


def test_metrics_reflect_calls_errors_and_a_worker_restart(box: Sandbox) -> None:
    before = _metrics(box)
    calls_before = _sample(before, 'llmc_calls_total{model="claude-haiku-4-5",outcome="ok",provider="anthropic"',
                           required=False)

    async def scenario() -> None:
        async with box.client() as client:
            await client.call_tool("chat", {"prompt": "m", "provider": "anthropic", "model": "claude-haiku-4-5"})
            await client.call_tool("chat", {"prompt": "m", "provider": "nope"})

    run(scenario())
    box.stack.restart_worker("lmstudio")
    box.wait_workers_up()
    after = _metrics(box)
    assert _sample(after, 'llmc_calls_total{model="claude-haiku-4-5",outcome="ok",provider="anthropic"') \
        == calls_before + 1
    assert _sample(after, 'llmc_calls_total{model="",outcome="not_found"') >= 1
    assert _sample(after, 'llmc_worker_restarts_total{provider="lmstudio"}') >= 1
    assert _sample(after, 'llmc_worker_up{provider="openai"}') == 1
    assert "llmc_call_latency_seconds_bucket" in after and "llmc_worker_heartbeat_age_seconds" in after
    for secret in (*box.keys.values(), box.token):
        assert secret not in after


def test_traceparent_reaches_the_provider(box: Sandbox) -> None:
    async def scenario() -> None:
        async with box.client() as client:
            await client.call_tool("chat", {"prompt": "trace me", "provider": "openai"},
                                   meta={"traceparent": TRACEPARENT})

    run(scenario())
    headers = httpx.get(f"{box.emulators.url('openai')}/_emulator/stats").json()["last_headers"]
    sent = headers["traceparent"]
    assert sent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and sent.endswith("-01")
    assert "00f067aa0ba902b7" not in sent  # the gateway's own hop is the provider call's parent

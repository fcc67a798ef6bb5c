"""Every call accounted for, and metrics that name who: through the real stack.

Each call is tagged with its own trace id (``traceparent`` in ``_meta``), so its
``tool_call`` lines can be picked out of ``gateway.log`` exactly. Every scrape of
``/metrics`` is parsed and checked the way ``promtool check metrics`` would.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token
from tests.integration.conftest import clear_faults, inject, process_pid, run
from tests.integration.exposition import Exposition, scrape
from tests.polling import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def abox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.02, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(abox: Sandbox) -> Iterator[None]:
    clear_faults(abox)
    yield
    clear_faults(abox)


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def _tool_calls(box: Sandbox, trace_id: str, *, settle_s: float = 0.3, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The ``tool_call`` lines of one call: waits for the first, then a little for any second."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [record for line in (box.log_dir / "gateway.log").read_text().splitlines()
                 if (record := orjson.loads(line)).get("event") == "tool_call" and record.get("trace_id") == trace_id]
        if lines:
            time.sleep(settle_s)  # a negative check: a duplicate would be written at the same moment
            again = [r for line in (box.log_dir / "gateway.log").read_text().splitlines()
                     if (r := orjson.loads(line)).get("event") == "tool_call" and r.get("trace_id") == trace_id]
            for record in again:
                print("log:", orjson.dumps(record).decode())
            return again
        assert time.monotonic() < deadline, f"no tool_call line for trace {trace_id}"
        time.sleep(0.05)


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any], traceparent: str,
                token: str | None = None) -> dict[str, Any]:
    async with box.client(token=token) as client:
        result = await client.call_tool(tool, arguments, meta={"traceparent": traceparent})
    assert result.structured_content is not None
    return result.structured_content


# ---- every call accounted for ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_cancelled_stream_is_one_line_and_one_count(abox: Sandbox, mode: str) -> None:
    # legacy: the SDK client sends notifications/cancelled; 2026-07-28: it closes the
    # request's HTTP stream (the connection drop is the cancellation).
    inject(abox, "openai", {"path": "/v1/chat/completions", "mode": "silent_stream", "after_chunks": 1,
                            "delay_s": 60})
    series = {"tool": "chatStream", "provider": "openai", "model": "gpt-4o-mini", "outcome": "cancelled"}
    before = scrape(abox)
    trace_id, traceparent = _traceparent()

    async def scenario() -> None:
        first = asyncio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first.set()

        async with abox.client(mode) as client:
            call = asyncio.create_task(client.call_tool(
                "chatStream", {"prompt": "long", "provider": "openai"}, progress_callback=on_progress,
                meta={"traceparent": traceparent}))
            await asyncio.wait_for(first.wait(), 10)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

    run(scenario())
    lines = _tool_calls(abox, trace_id)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["outcome"] == "cancelled" and line["error_class"] is None
    assert (line["client"], line["tool"], line["provider"], line["model"]) == ("demo", "chatStream", "openai",
                                                                             "gpt-4o-mini")
    assert line["request_id"] and line["latency_ms"] > 0
    after = scrape(abox)
    after.show("llmc_calls_total", **series)
    after.show("llmc_call_latency_seconds_count", **series)
    assert after.value("llmc_calls_total", **series) == before.value("llmc_calls_total", **series) + 1
    assert (after.value("llmc_call_latency_seconds_count", **series)
            == before.value("llmc_call_latency_seconds_count", **series) + 1)


def test_not_found_and_invalid_request_log_what_routing_knew(abox: Sandbox) -> None:
    before = scrape(abox)
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("chat", {"prompt": "x", "provider": "openai", "model": "no-such-model"}, "openai"),  # provider known
        ("chat", {"prompt": "x", "provider": "no-such-provider"}, None),  # routing knew nothing
        ("chat", {"provider": "openai"}, None),  # invalid: refused before routing
    ]
    for tool, arguments, provider in cases:
        trace_id, traceparent = _traceparent()
        error = run(_call(abox, tool, arguments, traceparent))["error"]
        (line,) = _tool_calls(abox, trace_id)
        assert line["outcome"] == error["type"] and line["provider"] == provider and line["model"] is None
        # The id the client was given is the one in the log: a support request can be traced.
        assert line["request_id"] and line["request_id"] == error["request_id"]
        assert line["client"] == "demo"
    after = scrape(abox)
    not_found = {"tool": "chat", "model": "", "outcome": "not_found"}
    after.show("llmc_calls_total", **not_found)
    assert after.value("llmc_calls_total", **not_found) == before.value("llmc_calls_total", **not_found) + 2
    invalid = {"tool": "chat", "provider": "", "outcome": "invalid_request"}
    assert after.value("llmc_calls_total", **invalid) == before.value("llmc_calls_total", **invalid) + 1
    # A made-up provider name never becomes a label value.
    assert "no-such-provider" not in after.text


def test_an_unknown_tool_is_logged_and_counted_under_a_fixed_label(abox: Sandbox) -> None:
    before = scrape(abox)
    trace_id, traceparent = _traceparent()

    async def scenario() -> None:
        async with abox.client() as client:
            with pytest.raises(Exception, match="unknown tool"):
                await client.call_tool("makeCoffee", {}, meta={"traceparent": traceparent})

    run(scenario())
    (line,) = _tool_calls(abox, trace_id)
    assert (line["tool"], line["outcome"], line["client"]) == ("makeCoffee", "not_found", "demo")
    after = scrape(abox)
    series = {"tool": "unknown", "outcome": "not_found"}
    after.show("llmc_calls_total", **series)
    assert after.value("llmc_calls_total", **series) == before.value("llmc_calls_total", **series) + 1
    assert "makeCoffee" not in after.text


def test_a_failure_after_routing_names_the_model_in_log_and_latency(abox: Sandbox) -> None:
    inject(abox, "anthropic", {"path": "/v1/messages", "mode": "status", "status": 400})
    series = {"tool": "chat", "provider": "anthropic", "model": "claude-haiku-4-5", "outcome": "invalid_request"}
    before = scrape(abox)
    trace_id, traceparent = _traceparent()
    error = run(_call(abox, "chat", {"prompt": "x", "model": "claude-haiku-4-5"}, traceparent))["error"]
    assert error["type"] == "invalid_request"
    (line,) = _tool_calls(abox, trace_id)
    assert (line["provider"], line["model"], line["request_id"]) == ("anthropic", "claude-haiku-4-5",
                                                                   error["request_id"])
    after = scrape(abox)
    after.show("llmc_calls_total", **series)
    after.show("llmc_call_latency_seconds_bucket", **series, le="+Inf")
    assert after.value("llmc_calls_total", **series) == before.value("llmc_calls_total", **series) + 1
    assert (after.value("llmc_call_latency_seconds_count", **series)
            == before.value("llmc_call_latency_seconds_count", **series) + 1)


def test_latency_is_labelled_by_model_and_outcome(abox: Sandbox) -> None:
    series = {"tool": "embed", "provider": "openai", "model": "text-embedding-3-small", "outcome": "ok"}
    before = scrape(abox)
    trace_id, traceparent = _traceparent()
    run(_call(abox, "embed", {"input": "vector me"}, traceparent))
    (line,) = _tool_calls(abox, trace_id)
    assert (line["outcome"], line["model"]) == ("ok", "text-embedding-3-small")
    after = scrape(abox)
    after.show("llmc_call_latency_seconds_bucket", **series)
    assert (after.value("llmc_call_latency_seconds_count", **series)
            == before.value("llmc_call_latency_seconds_count", **series) + 1)
    assert after.value("llmc_call_latency_seconds_sum", **series) > before.value("llmc_call_latency_seconds_sum",
                                                                                 **series)


# ---- metrics that name who ------------------------------------------------------------


def test_client_limit_rejections_name_the_client(abox: Sandbox) -> None:
    token = new_token()
    registry_file = abox.stack.settings.config_dir / "client-registry.json"
    registry = orjson.loads(registry_file.read_bytes())
    registry["clients"]["ci-bot"] = {"token_sha256": hash_token(token), "created_at": int(time.time()),
                                     "limits": {"requests_per_min": 1}}
    write_json_atomic(registry_file, registry, mode=0o600)
    _wait_for_client(abox, token)  # its first call, which uses up the one call a minute
    trace_id, traceparent = _traceparent()
    error = run(_call(abox, "chat", {"prompt": "again"}, traceparent, token=token))["error"]
    assert error["type"] == "rate_limited"
    (line,) = _tool_calls(abox, trace_id)
    assert (line["client"], line["outcome"]) == ("ci-bot", "rate_limited")
    after = scrape(abox)
    after.show("llmc_client_limit_rejections_total")
    assert after.value("llmc_client_limit_rejections_total", client="ci-bot") == 1
    assert after.value("llmc_client_limit_rejections_total", client="any") == 0


def _wait_for_client(box: Sandbox, token: str, timeout_s: float = 5.0) -> None:
    """Wait until the gateway has re-read the registry, then make the new client's first call.

    Polls /session (token check only, no tool call) a few times: each refusal counts
    towards the lockout, which is 10 in a minute, so the polls stay well below that.
    """
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{box.stack.settings.port}/session"
    while httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 401:
        assert time.monotonic() < deadline, "the gateway did not pick up the new client"
        time.sleep(0.6)
    _, traceparent = _traceparent()
    assert "text" in run(_call(box, "chat", {"prompt": "first"}, traceparent, token=token))


def test_worker_counters_survive_a_worker_kill(abox: Sandbox) -> None:
    for _ in range(3):
        run(_call(abox, "chat", {"prompt": "count me", "provider": "anthropic"}, _traceparent()[1]))
    attempts = "llmc_provider_attempts_total"
    before = _await_metric(abox, attempts, lambda v: v >= 3, provider="anthropic")
    restarts_before = before.value("llmc_worker_restarts_total", provider="anthropic")
    before.show(attempts, provider="anthropic")
    pid = process_pid(abox, "worker-anthropic")
    os.kill(pid, signal.SIGKILL)
    _await(lambda: process_pid(abox, "worker-anthropic") not in (0, pid), "supervisord did not respawn the worker")
    abox.wait_workers_up()
    after = _await_metric(abox, "llmc_worker_restarts_total", lambda v: v == restarts_before + 1,
                          provider="anthropic")
    # The new process counts from zero; getHealth's counters are totals across restarts, so
    # once the gateway has seen the restart they must still hold the old process's attempts.
    wait_until(lambda: _worker_health(abox, "anthropic")["restarts_seen"] >= 1
               and _worker_health(abox, "anthropic")["counters"].get("attempts", 0)
               >= before.value(attempts, provider="anthropic"), 10,
               "the gateway holds the anthropic totals across the restart")
    after = scrape(abox)
    after.show(attempts, provider="anthropic")
    after.show("llmc_worker_restarts_total", provider="anthropic")
    assert after.value(attempts, provider="anthropic") >= before.value(attempts, provider="anthropic")
    run(_call(abox, "chat", {"prompt": "and me", "provider": "anthropic"}, _traceparent()[1]))
    grown = _await_metric(abox, attempts, lambda v: v >= before.value(attempts, provider="anthropic") + 1,
                          provider="anthropic")
    grown.show(attempts, provider="anthropic")


def _worker_health(box: Sandbox, provider: str) -> dict[str, Any]:
    """``provider``'s worker entry in getHealth."""
    health = run(_call(box, "getHealth", {}, _traceparent()[1]))
    worker: dict[str, Any] = next(w for w in health["workers"] if w["provider"] == provider)
    return worker


def _await(check: Any, message: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def _await_metric(box: Sandbox, name: str, check: Any, timeout_s: float = 10.0, **labels: str) -> Exposition:
    deadline = time.monotonic() + timeout_s
    while True:
        exposition = scrape(box)
        if check(exposition.value(name, **labels)):
            return exposition
        assert time.monotonic() < deadline, f"{name}{labels} = {exposition.value(name, **labels)}"
        time.sleep(0.1)


# ---- limits set where clients are managed ---------------------------------------------


def _cli(box: Sandbox, *argv: str) -> str:
    env = {**os.environ, "LLMC_LOG_DIR": str(box.log_dir)}  # the audit trail of this stack
    done = subprocess.run([sys.executable, "-m", "cli.main", "clients", *argv,
                           "--config-dir", str(box.stack.settings.config_dir)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    print("$ llm-caller clients", " ".join(argv), "\n" + done.stdout.strip())
    return done.stdout


def test_limits_set_with_the_cli_apply_to_the_running_gateway(abox: Sandbox) -> None:
    token = _cli(abox, "add", "nightly", "--requests-per-min", "1", "--print-token").strip()
    _wait_for_client(abox, token)  # its one call this minute
    error = run(_call(abox, "chat", {"prompt": "more"}, _traceparent()[1], token=token))["error"]
    assert error["type"] == "rate_limited" and "1 calls/min" in error["message"]
    _cli(abox, "update", "nightly", "--requests-per-min", "off", "--max-concurrency", "2")
    deadline = time.monotonic() + 5
    while "error" in run(_call(abox, "chat", {"prompt": "now?"}, _traceparent()[1], token=token)):
        assert time.monotonic() < deadline, "the gateway did not apply the new limits"
        time.sleep(0.3)
    listing = orjson.loads(_cli(abox, "list", "--json"))
    assert next(r for r in listing if r["name"] == "nightly")["limits"] == {"requests_per_min": None,
                                                                           "max_concurrency": 2}
    audit = [orjson.loads(line) for line in (abox.log_dir / "audit.jsonl").read_text().splitlines()]
    changes = [e for e in audit if e.get("client") == "nightly" and e["event"] in ("client_added", "client_updated")]
    assert [(e["event"], e["limits"]) for e in changes] == [
        ("client_added", {"requests_per_min": 1, "max_concurrency": None}),
        ("client_updated", {"requests_per_min": None, "max_concurrency": 2})]

"""Issue #12, item 3: the loopback lockout under attack from another local process.

One stack with small numbers (5 failures in 10 s block for 30 s) and a small log size
(64KB, 3 kept) so the audit trail's rotation shows, set as an operator would: LLMC_*
variables through the launcher. The attacker sends random bad tokens, from 127.0.0.1 or
from a new 127.x.y.z address each time; the figures are printed (run with -s).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from shared.settings import SecuritySettings
from shared.tool_names import TOOL_NAMES
from tests.integration.abuse_helpers import audit_bytes, audit_files, audit_since, flood, rotating_address, tally
from tests.integration.conftest import run
from tests.integration.security_helpers import add_clients, base_url, now_iso, post, sandbox_with
from tests.polling import wait_until

pytestmark = pytest.mark.integration

THRESHOLD = 5
SECURITY = SecuritySettings(lockout_threshold=THRESHOLD, lockout_window_s=10.0, lockout_base_s=30.0,
                            lockout_max_s=120.0)
LOG_LIMITS = {"LLMC_LOG_MAX_BYTES": "64KB", "LLMC_LOG_BACKUPS": "3"}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with sandbox_with(SECURITY, heartbeat_s=0.25, env=LOG_LIMITS) as sandbox:
        yield sandbox


async def _health(box: Sandbox, token: str) -> bool:
    async with box.client(token=token) as client:
        return not (await client.call_tool("getHealth", {})).is_error


async def _stdio_tools(box: Sandbox, token: str) -> list[str]:
    """A new STDIO front end, launched as an MCP client launches it, lists the tools."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), "LLMC_TOKEN": token,
           "LLMC_GATEWAY_URL": base_url(box)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "cli.main", "stdio"], env=env)
    async with Client(stdio_client(params)) as client:
        return sorted(tool.name for tool in (await client.list_tools()).tools)


def test_rotating_loopback_addresses_are_throttled_after_the_threshold(box: Sandbox) -> None:
    started = time.monotonic()
    statuses = flood(box, 300, rotating_address)  # one request per address, in order
    took = time.monotonic() - started
    first_429 = statuses.index(429) if 429 in statuses else None
    print(f"\n300 bad tokens from 300 addresses in 127/8 in {took:.1f}s: {tally(statuses)}; "
          f"first 429 at attempt {None if first_429 is None else first_429 + 1}")
    assert statuses[:THRESHOLD] == [401] * THRESHOLD
    assert statuses[THRESHOLD:] == [429] * (300 - THRESHOLD)  # every further guess, whatever its address
    assert post(box, "2026-07-28", box.token).status_code == 200  # a valid token, same blocked source


def test_a_flood_of_bad_tokens_locks_out_no_valid_client(box: Sandbox) -> None:
    statuses = flood(box, 100)  # from 127.0.0.1, like the original probe
    fresh = add_clients(box, newcomer={}, stdio_user={})  # never seen by this gateway before
    started = time.monotonic()
    assert run(_health(box, fresh["newcomer"]))
    http_s = time.monotonic() - started
    started = time.monotonic()
    tools = run(_stdio_tools(box, fresh["stdio_user"]))
    stdio_s = time.monotonic() - started
    print(f"\n100 bad tokens from 127.0.0.1: {tally(statuses)}; then a fresh client token over HTTP: OK in "
          f"{http_s:.2f}s; a new STDIO front end: {tools} in {stdio_s:.2f}s")
    assert 429 in statuses and set(statuses) <= {401, 429}
    assert tools == sorted(TOOL_NAMES)
    after = flood(box, 3)
    assert after == [429] * 3  # the attacker stays throttled


def _accounted(box: Sandbox, since: str) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]],
                                                list[dict[str, Any]]]:
    """Failures the audit trail accounts for since ``since``: (count, events, auth_failures, auth_failed)."""
    events = audit_since(box, since)
    summaries = [e for e in events if e["event"] == "auth_failures" and e["first_at"] >= since]
    firsts = [e for e in events if e["event"] == "auth_failed"]
    return sum(e["failures"] for e in summaries) + len(firsts) - len(summaries), events, summaries, firsts


@pytest.mark.timeout(300)  # two counting windows of waiting, plus the flood itself
def test_ten_thousand_failures_add_little_to_the_audit_trail_and_it_rotates(box: Sandbox) -> None:
    # A wait for time itself: earlier tests' counting window must close before this one's failures count.
    time.sleep(SECURITY.lockout_window_s + 1.5)
    since, before = now_iso(), audit_bytes(box)
    valid: list[tuple[int, float]] = []  # a valid client calling on during the flood: (status, seconds)
    flooding = threading.Event()
    flooding.set()

    def valid_calls() -> None:
        while flooding.is_set():
            began = time.monotonic()
            valid.append((post(box, "2026-07-28", box.token).status_code, time.monotonic() - began))
            time.sleep(0.05)  # the valid client's pace during the flood, not a wait for something

    caller = threading.Thread(target=valid_calls)
    caller.start()
    started = time.monotonic()
    try:
        statuses = flood(box, 10_000, rotating_address, concurrency=16)
    finally:
        flooding.clear()
        caller.join()
    took = time.monotonic() - started
    latencies = sorted(seconds for _, seconds in valid)
    flooded = audit_bytes(box) - before
    # The last window's summary is written when that window ends.
    wait_until(lambda: _accounted(box, since)[0] >= 10_000, SECURITY.lockout_window_s + 10,
               "the last window's auth_failures summary is in the audit trail", interval_s=0.5)
    added = audit_bytes(box) - before
    counted, events, summaries, firsts = _accounted(box, since)
    print(f"\n10,000 bad tokens from rotating 127/8 addresses in {took:.1f}s ({10_000 / took:.0f}/s): "
          f"{tally(statuses)}; audit.jsonl grew {flooded} bytes during the flood, {added} bytes with the "
          f"summaries; {len(events)} lines ({len(firsts)} auth_failed, {len(summaries)} auth_failures) "
          f"accounting for {counted} failures; meanwhile {len(valid)} valid calls: statuses "
          f"{tally([status for status, _ in valid])}, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert {status for status, _ in valid} == {200} and latencies[-1] < 5.0  # generous: a shared 2-core box
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 10_000 - 100
    assert added < 200_000
    assert counted == 10_000 and {e["source"] for e in summaries} == {"loopback"}

    # Rotation: events of another kind (session tokens issued) push the trail past 64KB.
    issued = 0
    with httpx.Client(base_url=base_url(box), headers={"Authorization": f"Bearer {box.token}"}) as http:
        while not (box.log_dir / "audit.jsonl.1").exists() and issued < 2_000:
            assert http.post("/session", json={"ttl_s": 60}).status_code == 200
            issued += 1
        for _ in range(600):  # and keep going, so older files are dropped
            http.post("/session", json={"ttl_s": 60})
    files = {p.name: p.stat().st_size for p in audit_files(box) if not p.name.endswith(".lock")}
    print(f"after {issued + 600} session tokens issued: {files}")
    assert "audit.jsonl.1" in files and files["audit.jsonl"] <= 64 * 1024
    assert set(files) <= {"audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"}
    assert all(oct((box.log_dir / name).stat().st_mode & 0o777) == "0o600" for name in files)


def test_after_a_restart_the_attacker_is_throttled_again_and_valid_clients_are_not(box: Sandbox) -> None:
    box.stack.restart_worker("gateway")
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base_url(box)}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway did not come back"
        time.sleep(0.05)
    ready = time.monotonic()
    statuses = flood(box, 100)
    first_429 = statuses.index(429)
    reblocked_s = time.monotonic() - ready
    fresh = add_clients(box, after_restart={})
    assert run(_health(box, box.token)) and run(_health(box, fresh["after_restart"]))
    session = httpx.post(f"{base_url(box)}/session", json={"transport": "stdio"},
                         headers={"Authorization": f"Bearer {fresh['after_restart']}"})
    print(f"\nafter a gateway restart: 100 bad tokens {tally(statuses)}, throttled from attempt {first_429 + 1} "
          f"({reblocked_s:.2f}s after the gateway answered); the demo client, a fresh client and a new session "
          f"token exchange all still work ({session.status_code})")
    assert statuses[:THRESHOLD] == [401] * THRESHOLD and set(statuses[THRESHOLD:]) == {429}
    assert session.status_code == 200

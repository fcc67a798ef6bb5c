"""The usage ledger and budgets through the real stack (supervisord, gateway, workers, emulators, SQLite).

What the issue asks to show: ledger totals equal the emulators' reported usage exactly; 50
concurrent calls against a budget that allows 10 let at most 11 through and refuse the rest
with ``budget_exceeded``; a gateway restart keeps the totals (and the budget refusing); a
crash (SIGKILL) loses at most the rows of the last window; a clean stop loses none.

The ledger is read straight from the stack's SQLite file (``RUN_DIR/store.db``) with the
same ``SqliteStore`` the gateway uses, while the stack runs (WAL: readers never block).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.store.records import UsageTotal
from gateway.store.sqlite import SqliteStore
from harness.sandbox import Sandbox
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token
from tests.integration.conftest import process_pid, run
from tests.integration.test_usage_cost import _cost, _direct_usage, _price
from tests.polling import wait_until

pytestmark = pytest.mark.integration

WINDOW_MS = 4000
# Tokens of clients registered by one test and used by a later one (the module shares one stack).
TOKENS: dict[str, str] = {}
PROVIDER, MODEL = "openai", "gpt-4o-mini"


@pytest.fixture(scope="module")
def lbox() -> Iterator[Sandbox]:
    env = {"LLMC_LEDGER_WINDOW_MS": str(WINDOW_MS), "LLMC_BUDGET_REFRESH_S": "1"}
    with Sandbox(heartbeat_s=0.25, env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _store(box: Sandbox) -> SqliteStore:
    path = box.stack.settings.run_dir / "store.db"
    assert path.exists(), f"the gateway's store is not at {path}"
    return SqliteStore(f"sqlite:///{path}")


def _totals(box: Sandbox, client: str | None = None) -> dict[str, UsageTotal]:
    async def read() -> dict[str, UsageTotal]:
        store = _store(box)
        await store.open()
        try:
            return {t.key: t for t in await store.usage_totals(0.0, "client", client)}
        finally:
            await store.close()
    return run(read())


def _calls_in_ledger(box: Sandbox, client: str) -> int:
    found = _totals(box, client).get(client)
    return found.calls if found is not None else 0


def _add_client(box: Sandbox, name: str, budget: dict[str, Any] | None) -> str:
    """Register ``name`` (with ``budget``) beside the sandbox's client; the gateway reloads the registry."""
    token = new_token()
    path = box.stack.settings.config_dir / "client-registry.json"
    registry = orjson.loads(path.read_bytes())
    registry["clients"][name] = {"token_sha256": hash_token(token), "created_at": int(time.time())}
    if budget is not None:
        registry["clients"][name]["budget"] = budget
    write_json_atomic(path, registry, mode=0o600)
    time.sleep(1.2)  # the gateway looks at the registry file at most once a second, on a call
    run(_health(box))  # a call with a known token, which reloads it: no failed logins counted
    assert "error" not in _chat(box, token, "ping")
    return token


async def _health(box: Sandbox, token: str | None = None) -> dict[str, Any]:
    async with box.client(token=token) as client:
        result = await client.call_tool("getHealth", {})
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _chat_async(box: Sandbox, token: str, prompt: str, tool: str = "chat") -> dict[str, Any]:
    async with box.client(token=token) as client:
        result = await client.call_tool(tool, {"prompt": prompt, "provider": PROVIDER, "model": MODEL,
                                               "max_tokens": 20})
    assert result.structured_content is not None
    return dict(result.structured_content)


def _chat(box: Sandbox, token: str, prompt: str) -> dict[str, Any]:
    return run(_chat_async(box, token, prompt))


def test_ledger_totals_equal_the_emulators_reported_usage_exactly(lbox: Sandbox) -> None:
    token = _add_client(lbox, "counted", None)
    prompts = [f"Count these words {secrets.token_hex(3)} number {i}" for i in range(6)]
    for prompt in prompts:
        assert "error" not in _chat(lbox, token, prompt)
    expected = {"calls": len(prompts) + 1, "input": 0, "cached": 0, "output": 0, "reasoning": 0, "cost": 0.0}
    for prompt in [*prompts, "ping"]:
        used = _direct_usage(lbox, PROVIDER, MODEL, prompt)
        expected["input"] += used["input"] or 0
        expected["cached"] += used["cached_input"] or 0
        expected["output"] += min(used["output"] or 0, 20)  # the emulator stops at max_tokens, as the call asked
        expected["reasoning"] += used["reasoning"] or 0
        expected["cost"] += _cost(_price(lbox, PROVIDER, MODEL), {**used, "output": min(used["output"] or 0, 20)})
    got = wait_until(lambda: _totals(lbox, "counted").get("counted"), 10, "the ledger has the calls")
    got = wait_until(lambda: (t := _totals(lbox, "counted")["counted"]).calls == expected["calls"] and t,
                     10, "every call is in the ledger")
    print("ledger:", got, "expected:", expected)
    assert (got.calls, got.errors, got.input_tokens, got.cached_input_tokens, got.output_tokens,
            got.reasoning_tokens) == (expected["calls"], 0, expected["input"], expected["cached"], expected["output"],
                                      expected["reasoning"])
    assert got.cost == pytest.approx(expected["cost"], rel=1e-9, abs=1e-15) and got.unpriced_calls == 0


def _one_call_cost(box: Sandbox, prompt: str) -> float:
    used = _direct_usage(box, PROVIDER, MODEL, prompt)
    return _cost(_price(box, PROVIDER, MODEL), {**used, "output": min(used["output"] or 0, 20)})


def test_fifty_concurrent_calls_against_a_budget_for_ten_let_at_most_eleven_through(lbox: Sandbox) -> None:
    prompt = "Budgeted question about the weather today"
    per_call = _one_call_cost(lbox, prompt)
    probe = _one_call_cost(lbox, "ping")
    limit = probe + 10 * per_call * (1 - 1e-9)  # the registration's ping, then room for exactly ten calls
    token = _add_client(lbox, "capped", {"usd_per_day": limit})
    TOKENS["capped"] = token

    async def burst() -> list[dict[str, Any]]:
        return await asyncio.gather(*(_chat_async(lbox, token, prompt) for _ in range(50)))

    outputs = run(burst())
    ok = [o for o in outputs if "error" not in o]
    refused = [o["error"] for o in outputs if "error" in o]
    print(f"per call ${per_call!r}, limit ${limit!r}: {len(ok)} ok in the burst, {len(refused)} refused;",
          refused[0] if refused else None)
    assert 1 <= len(ok) <= 11
    assert all(e["type"] == "budget_exceeded" and e["retryable"] is False for e in refused)
    assert "usd_per_day" in refused[0]["message"] and "T00:00:00Z (UTC)" in refused[0]["message"]
    # Settled with the real usage: later calls use what the estimates held back, up to the limit.
    more = 0
    while "error" not in _chat(lbox, token, prompt):
        more += 1
        assert more < 20, "the budget never refused"
    print(f"{more} more calls after the burst")
    assert len(ok) + more <= 11
    assert len(ok) + more == 10  # every call costs the same: exactly ten fit
    # No row of the client may be written yet (the window is 4 s): wait for them, not for a key.
    spent = wait_until(lambda: (t := _totals(lbox, "capped").get("capped")) is not None
                       and t.calls == 1 + 50 + more + 1 and t, 10, "every capped call is in the ledger")
    print("capped in the ledger:", spent)
    assert spent.errors == 50 - len(ok) + 1 and spent.cost <= limit + per_call


def test_a_gateway_restart_keeps_the_totals_and_the_budget_refusing(lbox: Sandbox) -> None:
    before = wait_until(lambda: "capped" in (t := _totals(lbox)) and t, 10, "earlier calls in the ledger")
    lbox.stack.restart_worker("gateway")
    lbox.stack.wait_ready()
    lbox.wait_workers_up()
    assert _totals(lbox) == before
    refused = _chat(lbox, TOKENS["capped"], "after the restart")
    print("after restart:", refused.get("error"))
    assert refused["error"]["type"] == "budget_exceeded"
    # getHealth shows a client its own usage and budgets, from the ledger, and nobody else's.
    own = run(_health(lbox, TOKENS["capped"]))["usage"]
    print("capped's getHealth usage:", own)
    assert own["client"] == "capped" and own["usd_today"] == pytest.approx(before["capped"].cost, rel=1e-9)
    assert [(b["budget"], b["left"]) for b in own["budgets"]] == [("usd_per_day", 0.0)]
    assert run(_health(lbox))["usage"]["client"] == "demo"


def test_sigkill_loses_at_most_the_last_window_and_a_clean_stop_loses_nothing(lbox: Sandbox) -> None:
    token = _add_client(lbox, "crashy", None)
    for i in range(8):
        assert "error" not in _chat(lbox, token, f"before the pause {i}")
    wait_until(lambda: _calls_in_ledger(lbox, "crashy") == 9, 3 * WINDOW_MS / 1000, "a window wrote the rows")
    started = time.monotonic()
    for i in range(4):
        assert "error" not in _chat(lbox, token, f"last window {i}")
    old_pid = process_pid(lbox, "gateway")
    os.kill(old_pid, signal.SIGKILL)
    print(f"killed {time.monotonic() - started:.3f}s after the last window's first call")
    wait_until(lambda: process_pid(lbox, "gateway") not in (0, old_pid), 15, "supervisord restarts the gateway")
    lbox.stack.wait_ready()
    kept = _calls_in_ledger(lbox, "crashy")
    print(f"after SIGKILL: {kept} of 13 rows kept ({13 - kept} lost, the last window)")
    assert 9 <= kept <= 13

    lbox.wait_workers_up()
    clean = _add_client(lbox, "clean", None)
    for i in range(6):
        assert "error" not in _chat(lbox, clean, f"before a clean stop {i}")
    queued = _calls_in_ledger(lbox, "clean")
    lbox.stack.stop()
    after = _calls_in_ledger(lbox, "clean")
    print(f"clean stop: {queued} rows in the store before, {after} after (7 calls)")
    assert after == 7

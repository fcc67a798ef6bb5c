"""Two gateways, one PostgreSQL store (#18): one ledger, and budgets that hold across both.

Two sandboxes (each its own gateway, workers and emulators) share a fresh database on the
test session's PostgreSQL server and register the same client names, as one team's
registry would. What holds (runbook/usage.md, "Several gateways"):

* the ledger has every call of both gateways, and its totals equal the emulators' usage;
* a budget spent through one gateway is refused by the other once it re-read the store
  (``LLMC_BUDGET_REFRESH_S``, 1 s here);
* 50 concurrent calls split over both gateways against a budget that allows 10 let at
  most 11 through, as with one gateway: with PostgreSQL each reservation is also held in
  the store (``Store.hold_budget``), where every gateway sees it at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.store.postgres import PostgresStore
from gateway.store.records import UsageTotal
from harness.sandbox import Sandbox
from shared.settings import StoreSettings
from tests.integration.conftest import run
from tests.integration.test_ledger import MODEL, PROVIDER, _add_client, _chat, _chat_async, _one_call_cost
from tests.integration.test_usage_cost import _cost, _direct_usage, _price
from tests.pg_server import PgServer
from tests.polling import wait_until

pytestmark = pytest.mark.integration

REFRESH_S = 1.0


@pytest.fixture(scope="module")
def pg_pair(pg_server: PgServer) -> Iterator[tuple[Sandbox, Sandbox, str, StoreSettings]]:
    url, settings = pg_server.fresh_database()
    env = {"LLMC_STORE_URL": url, "LLMC_STORE_PASSWORD_FILE": str(settings.password_file),
           "LLMC_LEDGER_WINDOW_MS": "200", "LLMC_BUDGET_REFRESH_S": str(REFRESH_S)}
    with Sandbox(heartbeat_s=0.25, run_providers=("openai",), env=env) as one, \
            Sandbox(heartbeat_s=0.25, run_providers=("openai",), env=env) as two:
        one.wait_workers_up()
        two.wait_workers_up()
        yield one, two, url, settings


def _totals(url: str, settings: StoreSettings, client: str) -> UsageTotal | None:
    async def read() -> UsageTotal | None:
        store = PostgresStore(settings, url)
        await store.open()
        try:
            found = await store.usage_totals(0.0, "client", client)
        finally:
            await store.close()
        return found[0] if found else None
    return run(read())


def test_one_ledger_for_both_gateways_equal_to_the_emulators_usage(
        pg_pair: tuple[Sandbox, Sandbox, str, StoreSettings]) -> None:
    one, two, url, settings = pg_pair
    tokens = {id(box): _add_client(box, "counted", None) for box in (one, two)}
    prompts = [(box, f"Shared ledger question {i} from gateway {n}") for i in range(3)
               for n, box in enumerate((one, two))]
    for box, prompt in prompts:
        assert "error" not in _chat(box, tokens[id(box)], prompt)
    expected_in = expected_out = 0
    expected_cost = 0.0
    for box, prompt in [*prompts, (one, "ping"), (two, "ping")]:
        used = _direct_usage(box, PROVIDER, MODEL, prompt)
        used = {**used, "output": min(used["output"] or 0, 20)}
        expected_in += used["input"] or 0
        expected_out += used["output"] or 0
        expected_cost += _cost(_price(box, PROVIDER, MODEL), used)
    got = wait_until(lambda: (t := _totals(url, settings, "counted")) is not None and t.calls == 8 and t, 10,
                     "both gateways' rows are in the ledger")
    print("ledger:", got, "expected:", expected_in, expected_out, expected_cost)
    assert (got.input_tokens, got.output_tokens) == (expected_in, expected_out)
    assert got.cost == pytest.approx(expected_cost, rel=1e-9, abs=1e-15)


def test_a_budget_spent_through_one_gateway_is_refused_by_the_other(
        pg_pair: tuple[Sandbox, Sandbox, str, StoreSettings]) -> None:
    one, two, _url, _settings = pg_pair
    prompt = "Team budget question about the weather"
    per_call = _one_call_cost(one, prompt)
    limit = 2 * _one_call_cost(one, "ping") + 4 * per_call * (1 - 1e-9)  # each gateway's ping, then four calls
    team = {id(box): _add_client(box, "team", {"usd_per_day": limit}) for box in (one, two)}
    spent = 0
    while "error" not in _chat(one, team[id(one)], prompt):
        spent += 1
        assert spent < 10, "gateway one never refused"
        # A finished call counts at its estimate until its ledger row is written (one window, 200 ms),
        # then at its real cost: wait for that, so exactly four fit.
        time.sleep(0.5)
    assert spent == 4
    time.sleep(REFRESH_S + 0.5)  # gateway two re-reads every gateway's spending from the store
    refused = _chat(two, team[id(two)], prompt)
    print("gateway two:", refused.get("error"))
    assert refused["error"]["type"] == "budget_exceeded"


def test_fifty_concurrent_calls_over_two_gateways_against_a_budget_for_ten_let_at_most_eleven_through(
        pg_pair: tuple[Sandbox, Sandbox, str, StoreSettings]) -> None:
    one, two, url, settings = pg_pair
    prompt = "Burst budget question about the weather"
    per_call = _one_call_cost(one, prompt)
    limit = 2 * _one_call_cost(one, "ping") + 10 * per_call * (1 - 1e-9)
    burst = {id(box): _add_client(box, "burst", {"usd_per_day": limit}) for box in (one, two)}
    time.sleep(REFRESH_S + 0.5)  # both gateways have seen both pings

    async def both() -> list[dict[str, Any]]:
        calls = [_chat_async(box, burst[id(box)], prompt) for box in (one, two) for _ in range(25)]
        return await asyncio.gather(*calls)

    outputs = run(both())
    ok = sum(1 for o in outputs if "error" not in o)
    refused = [o["error"]["type"] for o in outputs if "error" in o]
    print(f"two gateways, 50 concurrent calls, a budget for 10: {ok} ok, {len(refused)} refused")
    assert 1 <= ok <= 11
    assert set(refused) == {"budget_exceeded"}
    # Settled with the real usage (each gateway's rows written, holds gone): later calls through
    # either gateway use what the estimates held back, up to the limit, and no further.
    more = 0
    boxes = (one, two)
    while True:
        time.sleep(0.5)
        box = boxes[more % 2]
        if "error" in _chat(box, burst[id(box)], prompt):
            break
        more += 1
        assert more < 20, "the budget never refused"
    print(f"{more} more calls after the burst, alternating gateways")
    assert ok + more <= 11
    assert ok + more == 10  # every call costs the same: exactly ten fit
    assert _chat(boxes[(more + 1) % 2], burst[id(boxes[(more + 1) % 2])], prompt)["error"]["type"] == "budget_exceeded"
    total = wait_until(lambda: (t := _totals(url, settings, "burst")) is not None and t.calls == 54 + more and t,
                       10, "every burst call is in the ledger")
    print("burst in the ledger:", total)
    assert total.calls - total.errors == ok + more + 2 and total.cost <= limit + per_call

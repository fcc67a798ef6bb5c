"""The usage ledger part of the ``Store`` contract, run unchanged against every backend.

Times are explicit: 2026-12-08 12:00 UTC is ``NOON``; the cases cross day and month
boundaries by moving ``at``, never by reading a clock.
"""

from __future__ import annotations

import asyncio
import calendar

import pytest

from gateway.store.base import Store
from gateway.store.records import BudgetCheck, LedgerRow, SpentRow, UsageTotal
from tests.unit.gateway.store.conftest import Backend

NOON = float(calendar.timegm((2026, 12, 8, 12, 0, 0)))
DAY = 86400.0


def _row(rid: str, at: float = NOON, client: str = "alice", *, model: str = "gpt-4o-mini", outcome: str = "ok",
         tokens: tuple[int | None, int | None, int | None, int | None] = (100, 20, 50, 10),
         cost: float | None = 0.5, provider: str = "openai", partial: bool = False) -> LedgerRow:
    return LedgerRow(rid, at, client, "chat", provider, model, outcome, None if outcome == "ok" else outcome, 12.5,
                     *tokens, cost, partial)


def test_a_batch_is_written_once_and_a_repeated_request_id_adds_nothing(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        rows = [_row(f"r{i}") for i in range(450)]  # more than one INSERT statement's worth
        assert await store.record_usage(rows) == 450
        assert await store.record_usage([rows[0], _row("new")]) == 1
        totals = await store.usage_totals(NOON - 1, "client")
        assert totals == [UsageTotal("alice", 451, 0, 45100, 9020, 22550, 4510, pytest.approx(225.5), 0)]
    backend.run(scenario)


def test_totals_group_by_client_model_day_and_provider_and_filter_by_client_and_time(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.record_usage([
            _row("a1"), _row("a2", NOON - DAY, model="gpt-4o"), _row("b1", client="bob", outcome="rate_limited",
                                                                    tokens=(None, None, None, None), cost=None),
            _row("b2", client="bob", tokens=(10, 0, 5, 0), cost=None, provider="anthropic", model="claude"),
        ])
        by_model = {t.key: t for t in await store.usage_totals(NOON - 2 * DAY, "model")}
        assert set(by_model) == {"openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude"}
        assert by_model["anthropic/claude"].unpriced_calls == 1
        by_day = [(t.key, t.calls) for t in await store.usage_totals(NOON - 2 * DAY, "day")]
        assert by_day == [("2026-12-07", 1), ("2026-12-08", 3)]
        bob = await store.usage_totals(NOON - 2 * DAY, "client", client="bob")
        assert [(t.key, t.calls, t.errors, t.input_tokens, t.cost) for t in bob] == [("bob", 2, 1, 10, 0.0)]
        recent = await store.usage_totals(NOON - 60, "provider")
        assert [(t.key, t.calls) for t in recent] == [("anthropic", 1), ("openai", 2)]
    backend.run(scenario)


def test_spent_counts_the_utc_day_and_month_for_clients_and_providers(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        month_start = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))
        await store.record_usage([
            _row("today", NOON), _row("yesterday", NOON - DAY), _row("first", month_start),
            _row("last-month", month_start - 1), _row("other", NOON, client="bob", cost=None),
        ])
        spent = {(s.kind, s.name): s for s in await store.spent(NOON)}
        assert spent[("client", "alice")] == SpentRow("client", "alice", 0.5, 150, 1.5, 450)
        assert spent[("client", "bob")] == SpentRow("client", "bob", 0.0, 150, 0.0, 150)
        assert spent[("provider", "openai")] == SpentRow("provider", "openai", 0.5, 300, 1.5, 600)
    backend.run(scenario)


def test_summarising_keeps_the_totals_and_deletes_the_old_rows(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        old = [_row(f"o{i}", NOON - 3 * DAY + i) for i in range(3)] + [_row("x", NOON - 3 * DAY, model="gpt-4o")]
        await store.record_usage([*old, _row("today")])
        before = await store.usage_totals(NOON - 5 * DAY, "model")
        spent_before = await store.spent(NOON)
        assert await store.summarise_ledger("2026-12-06") == 4
        assert await store.summarise_ledger("2026-12-06") == 0
        assert await store.usage_totals(NOON - 5 * DAY, "model") == before
        assert sorted(await store.spent(NOON)) == sorted(spent_before)
        # Rows of an already summarised day fold into the same summary row.
        await store.record_usage([_row("late", NOON - 3 * DAY + 50)])
        assert await store.summarise_ledger("2026-12-06") == 1
        by_day = {t.key: t.calls for t in await store.usage_totals(NOON - 5 * DAY, "day")}
        assert by_day == {"2026-12-05": 5, "2026-12-08": 1}
    backend.run(scenario)


def _check(limit: float, amount: float, unit: str = "usd", key: str = "client:alice:2026-12-08") -> BudgetCheck:
    return BudgetCheck(key, "client", "alice", "2026-12-08", "2026-12-08", unit, limit, amount)


def test_holds_count_until_the_ledger_row_lands_and_never_twice(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.record_usage([_row("spent")])  # 0.5 USD, 150 tokens today
        assert await store.hold_budget("h1", [_check(2.0, 1.0)], NOON, NOON + 60) is None
        assert await store.hold_budget("h2", [_check(2.0, 1.0)], NOON, NOON + 60) is None  # 1.5 < 2: admitted
        refused = await store.hold_budget("h3", [_check(2.0, 1.0)], NOON, NOON + 60)
        assert refused == ("client:alice:2026-12-08", pytest.approx(2.5))
        # h1's row lands (its real cost 0.25) and its hold goes in the same transaction.
        await store.record_usage([_row("h1", cost=0.25)])
        assert await store.hold_budget("h3", [_check(2.76, 0.1)], NOON, NOON + 60) is None  # 0.5+0.25+1 < 2.76
        # Now used: 0.75 spent + h2's 1.0 + h3's 0.1 = 1.85.
        assert await store.hold_budget("h4", [_check(1.85, 0.1)], NOON, NOON + 60) is not None
        # A request moving to another route replaces its hold; an expired hold counts no more.
        assert await store.hold_budget("h2", [_check(2.0, 0.01)], NOON, NOON + 60) is None
        assert await store.hold_budget("h5", [_check(0.76, 0.01)], NOON + 61, NOON + 120) is None  # h2, h3 expired
        # Tokens: "spent" and "h1" used 150 each today; 300 is full.
        tokens = _check(301, 100, unit="tokens", key="client:alice:2026-12-08:t")
        assert await store.hold_budget("h6", [tokens], NOON, NOON + 60) is None
        assert await store.hold_budget("h7", [tokens], NOON, NOON + 60) == ("client:alice:2026-12-08:t", 400.0)
    backend.run(scenario)


def test_two_gateways_racing_for_one_budget_hold_no_more_than_it_allows(durable: Backend) -> None:
    async def race(first: Store, second: Store) -> None:
        async def one(store: Store, rid: str) -> bool:
            return await store.hold_budget(rid, [_check(10.0, 1.0)], NOON, NOON + 60) is None
        results = await asyncio.gather(*(one(first if i % 2 else second, f"r{i}") for i in range(30)))
        assert sum(results) == 10
    durable.run_two(race)

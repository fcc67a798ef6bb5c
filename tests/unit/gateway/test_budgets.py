"""Budget arithmetic: reservations, settling, UTC day and month windows, refreshes from the store."""

from __future__ import annotations

import calendar

import pytest

from gateway.budgets import BudgetBook, Reservation
from gateway.store.records import LedgerRow, SpentRow
from shared import errors
from shared.policies import ClientBudget, ProviderBudget

NOON = float(calendar.timegm((2026, 12, 8, 12, 0, 0)))
DAILY = ClientBudget(usd_per_day=10.0)


def _book(*spent: SpentRow) -> BudgetBook:
    book = BudgetBook()
    book.refreshed(spent, NOON)
    return book


def _row(rid: str, cost: float | None, tokens: tuple[int, int] = (100, 50), at: float = NOON,
         client: str = "alice") -> LedgerRow:
    return LedgerRow(rid, at, client, "chat", "openai", "m", "ok", None, 5.0, tokens[0], None, tokens[1], None,
                     cost, False)


def _reserve(book: BudgetBook, usd: float | None = 1.0, budget: ClientBudget | None = DAILY, at: float = NOON,
             tokens: tuple[int, int] = (100, 50), provider: ProviderBudget | None = None) -> Reservation | None:
    return book.reserve("alice", budget, "openai", provider, usd, tokens[0], tokens[1], at)


def test_concurrent_reservations_stop_once_the_limit_is_held_so_at_most_one_call_overshoots() -> None:
    book = _book()
    held = [_reserve(book, usd=1.0) for _ in range(10)]
    assert all(r is not None for r in held)
    with pytest.raises(errors.BudgetExceeded) as refused:
        _reserve(book, usd=1.0)
    message = refused.value.message
    assert "client 'alice'" in message and "usd_per_day" in message
    assert "resets at 2026-12-09T00:00:00Z (UTC)" in message
    assert not refused.value.retryable
    # With estimates that do not divide the limit, the last admitted call is the one that overshoots.
    book = _book()
    admitted = 0
    while True:
        try:
            _reserve(book, usd=3.0)
        except errors.BudgetExceeded:
            break
        admitted += 1
    assert admitted == 4 and book.used("usd", ("client", "alice", "2026-12-08")) == 12.0


def test_settling_releases_the_estimate_and_counts_the_real_cost() -> None:
    book = _book()
    reservation = _reserve(book, usd=5.0)
    assert reservation is not None
    book.settle(reservation, _row("r1", 0.25))
    book.release(reservation)  # a second release changes nothing
    assert book.used("usd", ("client", "alice", "2026-12-08")) == pytest.approx(0.25)
    assert book.used("usd", ("client", "alice", "2026-12")) == pytest.approx(0.25)
    assert book.used("tokens", ("client", "alice", "2026-12-08")) == 150


def test_a_flushed_row_leaves_local_when_a_refresh_brings_it_back_so_nothing_counts_twice() -> None:
    book = _book()
    first, second = _reserve(book), _reserve(book)
    assert first is not None and second is not None
    book.settle(first, _row("r1", 2.0))
    book.settle(second, _row("r2", 3.0))
    book.flushed([_row("r1", 2.0)])  # r2 is still in the writer's queue
    day = ("client", "alice", "2026-12-08")
    assert book.used("usd", day) == pytest.approx(5.0)
    # The store now has r1 and another gateway's 4.0.
    book.refreshed([SpentRow("client", "alice", 6.0, 300, 6.0, 300)], NOON)
    assert book.used("usd", day) == pytest.approx(9.0)  # 6 from the store + r2 not yet written
    book.flushed([_row("r2", 3.0)])
    book.refreshed([SpentRow("client", "alice", 9.0, 450, 9.0, 450)], NOON)
    assert book.used("usd", day) == pytest.approx(9.0)


def test_a_new_utc_day_starts_from_zero_while_the_month_keeps_counting() -> None:
    book = _book(SpentRow("client", "alice", 10.0, 0, 25.0, 0))
    with pytest.raises(errors.BudgetExceeded):
        _reserve(book)
    tomorrow = NOON + 12 * 3600  # 2026-12-09 00:00 UTC
    assert _reserve(book, at=tomorrow) is not None
    monthly = ClientBudget(usd_per_month=26.0)
    assert _reserve(book, budget=monthly, at=tomorrow) is not None  # 25 spent + 1 held (from the line above) < 26
    with pytest.raises(errors.BudgetExceeded) as refused:
        _reserve(book, budget=monthly, at=tomorrow)
    assert "usd_per_month" in refused.value.message and "2027-01-01T00:00:00Z" in refused.value.message


def test_token_and_provider_budgets_and_what_no_budget_means() -> None:
    book = _book(SpentRow("provider", "openai", 0.0, 0, 99.5, 0))
    assert _reserve(book, budget=None) is None
    tokens = ClientBudget(tokens_per_day=200)
    assert _reserve(book, budget=tokens, usd=None) is not None  # no price: fine for a token budget
    assert _reserve(book, budget=tokens, usd=None) is not None  # 150 held < 200: admitted, overshoots to 300
    with pytest.raises(errors.BudgetExceeded) as refused:
        _reserve(book, budget=tokens, usd=None)
    assert "300 of 200 tokens" in refused.value.message and "tokens_per_day" in refused.value.message
    with pytest.raises(errors.BudgetExceeded) as unpriced:
        _reserve(book, usd=None)
    assert "no price" in unpriced.value.message
    assert _reserve(book, budget=None, provider=ProviderBudget(usd_per_month=100.0)) is not None
    with pytest.raises(errors.BudgetExceeded) as provider:
        _reserve(book, budget=None, provider=ProviderBudget(usd_per_month=100.0))
    assert "provider 'openai'" in provider.value.message and "2027-01-01T00:00:00Z" in provider.value.message


def test_budgets_are_refused_until_the_store_was_read_once() -> None:
    book = BudgetBook()
    book.failed("store /x is locked")
    assert _reserve(book, budget=None) is None
    with pytest.raises(errors.Unavailable) as waiting:
        _reserve(book)
    assert "store /x is locked" in waiting.value.message


def test_a_refresh_on_a_new_day_forgets_yesterday_but_keeps_the_month() -> None:
    book = _book()
    reservation = _reserve(book)
    assert reservation is not None
    book.settle(reservation, _row("r1", 1.5))
    tomorrow = NOON + 86400
    book.refreshed([], tomorrow)  # r1 is not in the store yet: the month still counts it
    assert book.used("usd", ("client", "alice", "2026-12-08")) == 0.0
    assert book.used("usd", ("client", "alice", "2026-12")) == pytest.approx(1.5)
    assert book.standing("alice", DAILY, tomorrow).usd_this_month == pytest.approx(1.5)
    assert book.standing("alice", DAILY, tomorrow).budgets == [("usd_per_day", 10.0, 0.0, 10.0,
                                                                "2026-12-10T00:00:00Z")]

"""Budgets: what a client may spend per UTC day and month, and a provider per month, held in memory.

A call that a budget covers reserves its *estimate* before dispatch (``reserve``); a call is
admitted while the budget's spent amount plus the reservations in flight is below its limit,
so concurrent calls overshoot by at most one call's estimate. When the call ends, its
reservation is released and its real usage (the ledger row) is added (``settle``).

Where the numbers come from: ``base`` is every gateway's spending as the store last reported it
(``refreshed``, every ``LLMC_BUDGET_REFRESH_S`` and at start-up, from the ledger and its kept
summaries, so budgets survive restarts); ``local`` is what this gateway settled since and has
not yet seen come back in a refresh. The ledger writer reports each batch it wrote
(``flushed``); at the next refresh those rows are in ``base`` and leave ``local``. Nothing here
awaits the store: a call's check is a few dict lookups.

Several gateways on one PostgreSQL store each hold their own reservations (shared ones would
put a store round trip in front of every call): each gateway sees the others' spending as of
its last refresh, so together they may overshoot by one call's estimate per gateway plus what
the others spent within one refresh interval and one ledger window.

Days and months are UTC. Tokens are input plus output (cached input and reasoning are inside
those). A call without a reported usage that broke mid-stream is charged its estimate.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.store.records import BudgetCheck, LedgerRow, SpentRow
from shared import errors
from shared.policies import ClientBudget, ProviderBudget

__all__ = ["DEFAULT_OUTPUT_TOKENS", "BudgetBook", "ClientStanding", "Reservation", "estimate_input_tokens"]

# Output tokens a call without max_tokens (and a model without max_output_tokens) is assumed to use.
DEFAULT_OUTPUT_TOKENS = 4096
# Characters per token assumed for the estimate: fewer than any tokenizer's average, so it errs high.
_CHARS_PER_TOKEN = 3

# (kind "client" | "provider", name, period "YYYY-MM-DD" | "YYYY-MM")
Key = tuple[str, str, str]


def estimate_input_tokens(chars: int) -> int:
    """A deliberately high estimate of the input tokens of ``chars`` characters of prompt."""
    return chars // _CHARS_PER_TOKEN + 1


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def _resets(period: str) -> str:
    """When a budget over ``period`` (a UTC day or month) starts again, as an ISO UTC time."""
    if len(period) == 10:
        start = calendar.timegm(time.strptime(period, "%Y-%m-%d")) + 86400
    else:
        year, month = int(period[:4]), int(period[5:7])
        start = calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))


@dataclass(slots=True)
class Reservation:
    """What one call holds against its budgets until it ends, and the estimate behind it."""

    usd_keys: tuple[Key, ...]
    token_keys: tuple[Key, ...]
    usd: float
    tokens: int
    input_tokens: int
    output_tokens: int
    # False when the model has no price (``usd`` is then 0 and counts toward no USD budget).
    priced: bool = True
    open: bool = True
    # The budgets it was checked against, for a reservation shared through the store.
    limits: tuple[_Limit, ...] = ()

    def checks(self) -> list[BudgetCheck]:
        """This reservation as the store's shared holds (``Store.hold_budget``): one per budget."""
        found = []
        for limit in self.limits:
            kind, name, period = limit.key
            first, last = (period, period) if len(period) == 10 else (f"{period}-01", f"{period}-31")
            amount = self.usd if limit.unit == "usd" else float(self.tokens)
            found.append(BudgetCheck(f"{kind}:{name}:{period}:{limit.unit}", kind, name, first, last, limit.unit,
                                     limit.limit, amount))
        return found

    def refusal(self, budget_key: str, used: float) -> errors.BudgetExceeded:
        """The error for the store's answer that ``budget_key`` is full at ``used``."""
        limit = next(lim for lim in self.limits if f"{':'.join(lim.key)}:{lim.unit}" == budget_key)
        return errors.BudgetExceeded(_over(limit, used))


@dataclass(frozen=True, slots=True)
class ClientStanding:
    """What a client has used (calls in flight included) and, per budget: (name, limit, used, left, resets)."""

    usd_today: float
    tokens_today: int
    usd_this_month: float
    budgets: list[tuple[str, float, float, float, str]]


@dataclass(frozen=True, slots=True)
class _Limit:
    key: Key
    unit: str  # "usd" | "tokens"
    name: str  # the budget's name in the config
    limit: float


class BudgetBook:
    """Spent amounts and reservations per budget key; every method is synchronous and cheap."""

    def __init__(self) -> None:
        self._base: dict[tuple[str, Key], float] = {}
        self._local: dict[tuple[str, Key], float] = {}
        self._held: dict[tuple[str, Key], float] = {}
        self._drop: dict[tuple[str, Key], float] = {}
        self._tracked: set[str] = set()
        # False until the store's spending was read once: budgets cannot be checked before.
        self.ready = False
        self.problem = "the store has not been read yet"

    # ---- the call path -------------------------------------------------------------------
    def reserve(
        self, client: str | None, budget: ClientBudget | None, provider: str, provider_budget: ProviderBudget | None,
        usd: float | None, input_tokens: int, output_tokens: int, now: float,
    ) -> Reservation | None:
        """Hold ``usd`` and the tokens against every budget of this call, or raise ``BudgetExceeded``.

        None when no budget covers the call. ``usd`` None: the model has no price, so a USD
        budget cannot count the call and refuses it.
        """
        limits = _limits(client, budget, provider, provider_budget, now)
        if not limits:
            return None
        if not self.ready:
            raise errors.Unavailable(f"budgets cannot be checked now ({self.problem}); the call was not sent",
                                     retry_after_s=5.0)
        tokens = input_tokens + output_tokens
        for limit in limits:
            if limit.unit == "usd" and usd is None:
                raise errors.BudgetExceeded(
                    f"{_who(limit.key)} has a {limit.name} budget, and {provider}'s model has no price, so its cost "
                    "could not be counted; give the model a price in providers.json, or use a priced model")
            used = self.used(limit.unit, limit.key)
            if used >= limit.limit:
                raise errors.BudgetExceeded(_over(limit, used))
        usd_keys = tuple(lim.key for lim in limits if lim.unit == "usd")
        token_keys = tuple(lim.key for lim in limits if lim.unit == "tokens")
        reservation = Reservation(usd_keys, token_keys, usd or 0.0, tokens, input_tokens, output_tokens,
                                  priced=usd is not None, limits=tuple(limits))
        self._hold(reservation, 1)
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call moved to another route, or ended); idempotent."""
        if reservation.open:
            reservation.open = False
            self._hold(reservation, -1)

    def settle(self, reservation: Reservation, row: LedgerRow) -> None:
        """The call ended: release its reservation and add what its ledger row says it used."""
        self.release(reservation)
        self._tracked.add(row.request_id)
        _add(self._local, row, 1)

    def used(self, unit: str, key: Key) -> float:
        """Spent (store and this gateway) plus reserved, in ``unit`` ("usd" or "tokens")."""
        item = (unit, key)
        return self._base.get(item, 0.0) + self._local.get(item, 0.0) + self._held.get(item, 0.0)

    def standing(self, client: str, budget: ClientBudget | None, now: float) -> ClientStanding:
        """``client``'s spending today and this month, and each of its budgets with what is left."""
        day = _day(now)
        key_day, key_month = ("client", client, day), ("client", client, day[:7])
        left = [(limit.name, limit.limit, used, max(limit.limit - used, 0.0), _resets(limit.key[2]))
                for limit in _limits(client, budget, "", None, now)
                for used in (self.used(limit.unit, limit.key),)]
        return ClientStanding(self.used("usd", key_day), int(self.used("tokens", key_day)),
                              self.used("usd", key_month), left)

    # ---- the ledger writer's side --------------------------------------------------------
    def flushed(self, rows: Iterable[LedgerRow]) -> None:
        """These rows are now in the store: the next refresh counts them, so ``local`` lets go of them then."""
        tracked = self._tracked
        for row in rows:
            if row.request_id in tracked:
                tracked.discard(row.request_id)
                _add(self._drop, row, 1)

    def dropped(self, rows: Iterable[LedgerRow]) -> None:
        """These rows will never reach the store (the writer gave up on them): stop waiting for them.

        Their amounts stay in ``local`` until the day or month is over, so budgets still count them.
        """
        for row in rows:
            self._tracked.discard(row.request_id)

    def refreshed(self, spent: Iterable[SpentRow], now: float) -> None:
        """Every gateway's spending as the store reports it now (read after the last ``flushed``)."""
        day = _day(now)
        month = day[:7]
        base: dict[tuple[str, Key], float] = {}
        for row in spent:
            base[("usd", (row.kind, row.name, day))] = row.usd_day
            base[("tokens", (row.kind, row.name, day))] = float(row.tokens_day)
            base[("usd", (row.kind, row.name, month))] = row.usd_month
            base[("tokens", (row.kind, row.name, month))] = float(row.tokens_month)
        self._base = base
        periods = (day, month)
        # Amounts of past days and months can never be checked again: keep the maps small.
        self._local = {item: v for item, v in self._local.items() if item[1][2] in periods}
        for item, amount in self._drop.items():
            if item[1][2] not in periods:
                continue
            left = self._local.get(item, 0.0) - amount
            if abs(left) < 1e-12:
                self._local.pop(item, None)
            else:
                self._local[item] = left
        self._drop = {}
        self.ready, self.problem = True, ""

    def failed(self, problem: str) -> None:
        """The store could not be read; before the first success, budgeted calls are refused."""
        if not self.ready:
            self.problem = problem

    def _hold(self, reservation: Reservation, sign: int) -> None:
        held = self._held
        for key in reservation.usd_keys:
            held[("usd", key)] = held.get(("usd", key), 0.0) + sign * reservation.usd
        for key in reservation.token_keys:
            held[("tokens", key)] = held.get(("tokens", key), 0.0) + sign * reservation.tokens


def _add(into: dict[tuple[str, Key], float], row: LedgerRow, sign: int) -> None:
    """Add ``row``'s USD and tokens to the day and month keys of its client and provider."""
    day = _day(row.at)
    usd = row.cost or 0.0
    tokens = float((row.input_tokens or 0) + (row.output_tokens or 0))
    for kind, name in (("client", row.client or ""), ("provider", row.provider or "")):
        for period in (day, day[:7]):
            for unit, amount in (("usd", usd), ("tokens", tokens)):
                item = (unit, (kind, name, period))
                into[item] = into.get(item, 0.0) + sign * amount


def _limits(client: str | None, budget: ClientBudget | None, provider: str,
            provider_budget: ProviderBudget | None, now: float) -> list[_Limit]:
    limits: list[_Limit] = []
    day = _day(now)
    if budget is not None and client is not None:
        if budget.usd_per_day is not None:
            limits.append(_Limit(("client", client, day), "usd", "usd_per_day", budget.usd_per_day))
        if budget.usd_per_month is not None:
            limits.append(_Limit(("client", client, day[:7]), "usd", "usd_per_month", budget.usd_per_month))
        if budget.tokens_per_day is not None:
            limits.append(_Limit(("client", client, day), "tokens", "tokens_per_day", budget.tokens_per_day))
    if provider_budget is not None and provider_budget.usd_per_month is not None:
        limits.append(_Limit(("provider", provider, day[:7]), "usd", "usd_per_month", provider_budget.usd_per_month))
    return limits


def _who(key: Key) -> str:
    return f"client {key[1]!r}" if key[0] == "client" else f"provider {key[1]!r}"


def _over(limit: _Limit, used: float) -> str:
    amount = (f"${used:.6f} of ${limit.limit:g}" if limit.unit == "usd"
              else f"{int(used)} of {int(limit.limit)} tokens")
    period = "UTC day" if len(limit.key[2]) == 10 else "UTC month"
    return (f"{_who(limit.key)} has used its {limit.name} budget ({amount} this {period}, calls in flight "
            f"included); it resets at {_resets(limit.key[2])} (UTC); nothing was sent")

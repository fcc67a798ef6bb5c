"""The retry budget's maths on a fake clock: a quiet worker always retries, a flood stays capped.

Only ``RetryPlanner`` and its ``budget.record_attempt()`` are used, as the worker's caller
uses them, so the figures are what a worker would do.
"""

from __future__ import annotations

import random

from shared import errors
from shared.policies import RetryPolicy
from workers.resilience.retry import RetryPlanner


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def _planner(clock: Clock, **policy: float) -> RetryPlanner:
    return RetryPlanner("lmstudio", RetryPolicy(**policy), clock=clock, rng=random.Random(3))  # type: ignore[arg-type]


def _rate_limited_call(plan: RetryPlanner, clock: Clock) -> bool:
    """One call whose first attempt gets a 429 with Retry-After 1 s: was it retried?"""
    plan.budget.record_attempt()
    return plan.delay_for(errors.RateLimited("429", retry_after_s=1.0), 1, clock.now + 60) == 1.0


def test_a_quiet_worker_retries_every_rate_limited_call() -> None:
    clock = Clock()
    plan = _planner(clock)  # the shipped defaults
    verdicts = []
    for _ in range(30):  # one person's editor: a call every 4 s, each meeting one 429
        verdicts.append(_rate_limited_call(plan, clock))
        clock.now += 4.0
    print(f"\nquiet: {sum(verdicts)}/{len(verdicts)} rate-limited calls retried")
    assert all(verdicts), verdicts


def test_back_to_back_rate_limits_at_low_traffic_are_all_retried() -> None:
    clock = Clock()
    plan = _planner(clock)
    verdicts = []
    for _ in range(8):  # a short burst: each call waits out its Retry-After, then the next one comes
        verdicts.append(_rate_limited_call(plan, clock))
        clock.now += 1.2
    print(f"\nburst of 8 at ~1/s: {sum(verdicts)}/8 retried")
    assert all(verdicts), verdicts


def test_a_flood_is_capped_near_the_ratio_and_the_floor_returns_after_it() -> None:
    clock = Clock()
    plan = _planner(clock, budget_ratio=0.2, budget_ttl_s=10, budget_min_retries_per_s=1)
    requests = retries = 0
    per_window: dict[int, tuple[int, int]] = {}
    for step in range(6000):  # 100 failing calls a second for 60 s
        clock.now += 0.01
        requests += 1
        plan.budget.record_attempt()
        granted = plan.delay_for(errors.Overloaded("503"), 1, clock.now + 60) is not None
        retries += granted
        window = step // 1000
        calls, tried = per_window.get(window, (0, 0))
        per_window[window] = (calls + 1, tried + granted)
    ratio = retries / requests
    print(f"\nflood: {requests} calls, {retries} retries granted ({ratio:.3f} of traffic); "
          f"per 10 s window: {[t for _, t in per_window.values()]}; refused {plan.budget.refused}")
    # Expected about ratio + floor/rate = 0.2 + 1/100 per call.
    assert 0.19 <= ratio <= 0.23
    for calls, tried in per_window.values():
        assert tried <= 10 + 0.2 * calls + 25  # floor + ratio, give or take a slice of expiry lag
    # The flood ends. After one ttl of quiet the deposits and withdrawals have expired and the
    # floor is whole again: the next quiet calls are retried at once, with no traffic to earn it.
    clock.now += 10.0
    after = [_rate_limited_call(plan, clock) for _ in range(5)]
    print(f"after the flood: {sum(after)}/5 quiet calls retried")
    assert all(after)


def test_zero_floor_means_ratio_only() -> None:
    clock = Clock()
    plan = _planner(clock, budget_ratio=0.5, budget_min_retries_per_s=0)
    assert not _rate_limited_call(plan, clock)  # half a retry earned: not yet
    assert _rate_limited_call(plan, clock)  # one whole retry earned
    assert (plan.budget.granted, plan.budget.refused) == (1, 1)


def test_deposits_expire_after_the_ttl() -> None:
    clock = Clock()
    plan = _planner(clock, budget_ratio=1.0, budget_ttl_s=5, budget_min_retries_per_s=0)
    for _ in range(3):
        plan.budget.record_attempt()
    assert plan.budget.available() == 3
    clock.now += 5.1
    assert plan.budget.available() == 0
    assert plan.delay_for(errors.ProviderError("x"), 1, clock.now + 60) is None

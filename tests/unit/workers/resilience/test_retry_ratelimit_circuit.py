"""Retry planning, rate limiting and circuit breaking, on a fake clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared import errors
from shared.policies import CircuitPolicy, RateLimits, RetryPolicy
from shared.token_bucket import TokenBucket
from workers.resilience.circuit import CircuitBreaker, Circuits
from workers.resilience.ratelimit import ProviderLimiter
from workers.resilience.retry import RetryPlanner


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def planner(clock: Clock, **policy: object) -> RetryPlanner:
    return RetryPlanner("openai", RetryPolicy(**policy), clock=clock, rng=random.Random(7))  # type: ignore[arg-type]


def test_only_transient_errors_are_retried() -> None:
    clock = Clock()
    plan = planner(clock)
    far = clock.now + 100
    assert plan.delay_for(errors.AuthError("x"), 1, far) is None
    assert plan.delay_for(errors.QuotaExhausted("x"), 1, far) is None
    assert plan.delay_for(errors.InvalidRequest("x"), 1, far) is None
    assert plan.delay_for(errors.StreamInterrupted("x"), 1, far) is None
    assert plan.delay_for(errors.WorkerLost("x"), 1, far) is None
    assert plan.delay_for(errors.Overloaded("x"), 1, far) is not None


def test_provider_verdict_overrides_the_class() -> None:
    clock = Clock()
    plan = planner(clock)
    refused = errors.Overloaded("x")
    refused.should_retry = False
    assert plan.delay_for(refused, 1, clock.now + 100) is None
    invited = errors.ProviderError("x")
    invited.should_retry = True
    assert plan.delay_for(invited, 1, clock.now + 100) is not None


def test_hint_is_used_and_clamped_with_a_logged_violation(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    plan = planner(clock, max_hint_s=5)
    assert plan.delay_for(errors.RateLimited("x", retry_after_s=2.5), 1, clock.now + 100) == 2.5
    assert plan.delay_for(errors.RateLimited("x", retry_after_s=500), 1, clock.now + 100) == 5
    assert plan.hint_violations == 1 and "retry_hint_clamped" in caplog.text


def test_backoff_is_jittered_and_capped() -> None:
    clock = Clock()
    plan = RetryPlanner("p", RetryPolicy(base_delay_s=1, max_delay_s=3, max_attempts=10, budget_ratio=1),
                        clock=clock, rng=random.Random(1))
    delays = [plan.delay_for(errors.ProviderError("x"), attempt, clock.now + 100) for attempt in range(1, 8)]
    assert all(d is not None and 0 <= d <= min(3, 2 ** (i)) for i, d in enumerate(delays))
    assert len(set(delays)) > 3  # jittered, not a fixed schedule


def test_never_past_deadline_nor_max_attempts() -> None:
    clock = Clock()
    plan = planner(clock, max_attempts=2)
    assert plan.delay_for(errors.RateLimited("x", retry_after_s=3), 1, clock.now + 2) is None
    assert plan.delay_for(errors.ProviderError("x"), 2, clock.now + 100) is None


def test_token_bucket_refills_over_time() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock)  # one a second
    bucket.take(60)
    assert bucket.wait_time(1) == pytest.approx(1.0)
    clock.now += 0.5
    assert bucket.wait_time(1) == pytest.approx(0.5)
    assert bucket.wait_time(61) == float("inf")


def test_limiter_waits_briefly_then_refuses_with_retry_after() -> None:
    clock = Clock()
    limiter = ProviderLimiter("openai", RateLimits(requests_per_min=60, max_wait_s=0.5), clock)

    async def scenario() -> None:
        for _ in range(60):
            await limiter.acquire(1, clock.now + 10)
        with pytest.raises(errors.RateLimited) as caught:
            await limiter.acquire(1, clock.now + 10)
        assert caught.value.retry_after_s == pytest.approx(1.0)

    asyncio.run(scenario())
    assert limiter.rejections == 1


def test_provider_headers_tighten_the_limit() -> None:
    clock = Clock()
    limiter = ProviderLimiter("openai", RateLimits(max_wait_s=0.1), clock)
    limiter.observe(429, {"Retry-After": "0"})
    assert limiter._wait_needed(1) == 0  # an explicit zero is no pause
    limiter.observe(429, {})
    assert limiter._wait_needed(1) == pytest.approx(1)  # no hint: a short default pause
    clock.now += 1
    limiter.observe(429, {"Retry-After": "7"})
    assert limiter._wait_needed(1) == pytest.approx(7)
    clock.now += 8
    limiter.observe(200, {}, exhausted_s=90.0)  # what the adapter read from its kind's headers
    assert limiter._wait_needed(1) == pytest.approx(90)


def test_a_wait_in_a_429s_body_pauses_like_retry_after() -> None:
    """Gemini's RetryInfo (read from the body by the adapter) pauses as Retry-After does."""
    clock = Clock()
    limiter = ProviderLimiter("gemini", RateLimits(max_wait_s=0.1), clock)
    limiter.observe(429, {}, None, 3.0)
    assert limiter._wait_needed(1) == pytest.approx(3)  # not the 1 s default of a 429 with no hint
    clock.now += 4
    limiter.observe(429, {}, None, 0.0)
    assert limiter._wait_needed(1) == 0  # an explicit zero is no pause, as with Retry-After: 0
    limiter.observe(429, {"Retry-After": "9"}, None, 2.0)
    assert limiter._wait_needed(1) == pytest.approx(2)  # the body's word, which the error carries too
    clock.now += 3
    limiter.observe(429, {}, None, 3600.0)
    assert limiter._wait_needed(1) == pytest.approx(120)  # the same ceiling as a Retry-After
    clock.now += 121
    limiter.observe(200, {}, None, 50.0)
    assert limiter._wait_needed(1) == 0  # only a 429's hint pauses


def test_circuit_opens_fails_fast_probes_once_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("openai", CircuitPolicy(failure_threshold=3, cooldown_s=10), clock)
    for _ in range(2):
        breaker.check()
        breaker.failure(errors.Overloaded("x"))
    assert breaker.state == "closed"
    breaker.failure(errors.ProviderError("x"))
    assert breaker.state == "open"
    with pytest.raises(errors.Unavailable) as caught:
        breaker.check()
    assert caught.value.retry_after_s == pytest.approx(10)
    clock.now += 10
    breaker.check()  # the one probe
    assert breaker.state == "half_open"
    with pytest.raises(errors.Unavailable):
        breaker.check()  # a second caller during the probe
    breaker.success()
    assert breaker.state == "closed"


def test_failed_probe_reopens_and_non_health_errors_do_not_count() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", CircuitPolicy(failure_threshold=1, cooldown_s=5), clock)
    for error in (errors.RateLimited("x"), errors.InvalidRequest("x"), errors.AuthError("x")):
        breaker.failure(error)
    assert breaker.state == "closed"
    breaker.failure(errors.Timeout("x"))
    clock.now += 5
    breaker.check()
    breaker.failure(errors.Timeout("x"))
    assert breaker.state == "open"


def test_per_model_circuit_leaves_other_models_alone() -> None:
    clock = Clock()
    circuits = Circuits("openai", CircuitPolicy(failure_threshold=2, cooldown_s=5), clock)
    circuits.record("a", errors.ProviderError("x"))
    circuits.record("b", None)  # a success elsewhere resets the provider-wide count
    circuits.record("a", errors.ProviderError("x"))
    with pytest.raises(errors.Unavailable):
        circuits.check("a")
    circuits.check("b")
    assert circuits.snapshot() == {"state": "closed", "failures": 1, "models": {"a": "open"}}

"""Each error type's policy is declared once, on its class, and every decision reads it."""

from __future__ import annotations

import random

import pytest

from shared import errors
from shared.errors import WorkerRetry
from shared.policies import CircuitPolicy, RetryPolicy
from workers.resilience.circuit import CircuitBreaker
from workers.resilience.retry import RetryPlanner

_ASK, _YES, _NEVER = WorkerRetry.IF_PROVIDER_ASKS, WorkerRetry.UNLESS_PROVIDER_REFUSES, WorkerRetry.NEVER

# type: (client may retry, worker retries, counts toward circuit, next route, in health, cleared by an answer)
_TABLE = {
    "internal": (False, _ASK, False, False, False, False),
    "auth": (False, _ASK, False, False, True, False),
    "permission": (False, _ASK, False, False, False, False),
    "invalid_request": (False, _ASK, False, False, False, False),
    "context_length": (False, _ASK, False, False, False, False),
    "not_found": (False, _ASK, False, False, False, False),
    "quota_exhausted": (False, _ASK, False, False, False, False),
    "budget_exceeded": (False, _NEVER, False, False, False, False),
    "unsupported": (False, _ASK, False, False, False, False),
    "guard_violation": (False, _ASK, False, False, False, False),
    "content_blocked": (False, _ASK, False, False, False, False),
    "rate_limited": (True, _YES, False, True, True, False),
    "overloaded": (True, _YES, True, True, True, False),
    "provider_error": (True, _YES, True, True, True, False),
    "timeout": (True, _YES, True, False, True, True),
    "connection": (True, _YES, True, True, True, True),
    "worker_lost": (True, _NEVER, False, False, True, False),
    "unavailable": (True, _NEVER, False, True, True, False),
    "stream_interrupted": (True, _NEVER, False, False, True, False),
    "invalid_output": (True, _NEVER, False, False, False, False),
}


def _policy_row(policy: errors.ErrorPolicy) -> tuple[object, ...]:
    return (policy.retryable, policy.worker_retry, policy.circuit, policy.fallback, policy.health,
            policy.cleared_by_answer)


def test_the_policy_table_is_pinned() -> None:
    assert {t: _policy_row(errors.error_class(t).policy) for t in errors.ERROR_TYPES} == _TABLE


@pytest.mark.parametrize("type_name", errors.ERROR_TYPES)
def test_each_type_declares_its_own_complete_policy(type_name: str) -> None:
    cls = errors.error_class(type_name)
    assert "policy" in vars(cls), f"{cls.__name__} inherits its policy instead of declaring it"
    policy = cls.policy
    assert policy.summary and policy.means and policy.action
    # The wire's retryable and the class hierarchy agree with the policy.
    assert cls("x").to_payload()["retryable"] is policy.retryable is cls("x").retryable
    assert policy.retryable is issubclass(cls, errors.TransientError)
    # What the worker retries by default, a client may retry too.
    assert policy.worker_retry is not _YES or policy.retryable


def test_a_type_without_a_policy_or_declared_twice_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="declares no policy"):
        type("Nameless", (errors.ClientError,), {"type": "nameless"})
    with pytest.raises(TypeError, match="declared twice"):
        type("Again", (errors.ClientError,), {"type": "auth", "policy": errors.AuthError.policy})
    assert "nameless" not in errors.ERROR_TYPES and errors.error_class("auth") is errors.AuthError


@pytest.mark.parametrize("should_retry", [None, True, False])
@pytest.mark.parametrize("type_name", errors.ERROR_TYPES)
def test_the_retry_planner_follows_the_policy(type_name: str, should_retry: bool | None) -> None:
    planner = RetryPlanner("p", RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
                           rng=random.Random(0))
    error = errors.error_class(type_name)("x")
    error.should_retry = should_retry
    expected = {_NEVER: False, _YES: should_retry is not False, _ASK: should_retry is True}
    retried = planner.delay_for(error, attempt=1, deadline=float("inf")) is not None
    assert retried is expected[error.policy.worker_retry]


@pytest.mark.parametrize("type_name", errors.ERROR_TYPES)
def test_the_circuit_counts_what_the_policy_says(type_name: str) -> None:
    breaker = CircuitBreaker("p", CircuitPolicy(failure_threshold=1))
    breaker.failure(errors.error_class(type_name)("x"))
    assert (breaker.state == "open") is errors.error_class(type_name).policy.circuit


def test_invalid_output_carries_the_reply_and_the_first_error_and_is_neither_retried_nor_rerouted() -> None:
    error = errors.InvalidOutput("the reply does not match the schema", raw_text='{"n": "x"}',
                                 validation_error={"path": "/n", "message": "'x' is not of type 'integer'"},
                                 provider="openai", request_id="r1")
    payload = error.to_payload()
    assert payload["type"] == "invalid_output" and payload["retryable"] is True
    assert payload["raw_text"] == '{"n": "x"}'
    assert payload["validation_error"] == {"path": "/n", "message": "'x' is not of type 'integer'"}
    assert (payload["provider"], payload["request_id"]) == ("openai", "r1")
    policy = errors.InvalidOutput.policy
    # The provider answered (healthy, no circuit), the worker never sees it, and the paid answer is not re-sent.
    assert not policy.circuit and policy.worker_retry is _NEVER and not policy.fallback and not policy.health
    assert errors.error_class("invalid_output") is errors.InvalidOutput

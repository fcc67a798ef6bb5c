"""Unreachable after N failed connections in a row; any answer ends it; the circuit is held meanwhile."""

from __future__ import annotations

import pytest

from shared import errors
from shared.policies import CircuitPolicy
from workers.providers.base import display_url
from workers.resilience.circuit import CircuitBreaker
from workers.resilience.reachability import Reachability

REFUSED = errors.ConnectionFailed("cannot reach lmstudio at http://127.0.0.1:1234: connection refused")


def _reach(changes: list[bool]) -> Reachability:
    reach = Reachability("lmstudio", "http://127.0.0.1:1234", threshold=3, probe_interval_s=2,
                         wall_clock=lambda: 1_800_000_000.0)
    reach.on_change = lambda: changes.append(reach.down)
    return reach


def test_consecutive_connection_failures_make_it_unreachable_and_an_answer_ends_it() -> None:
    changes: list[bool] = []
    reach = _reach(changes)
    reach.observe(REFUSED)
    reach.observe(errors.RateLimited("429"))  # not a connection failure: neither counts nor resets
    reach.observe(REFUSED)
    assert not reach.down and reach.suspect and changes == []
    reach.observe(REFUSED)
    assert reach.down and changes == [True]
    assert reach.message() == ("lmstudio is unreachable at http://127.0.0.1:1234 since 2027-01-15T08:00:00Z "
                               "(connection refused); calls fail fast until a probe (every 2s) reaches it")
    reach.connection_failed(REFUSED)  # still down: no new change
    reach.answered()
    assert not reach.down and not reach.suspect and changes == [True, False]
    assert reach.since_iso() is None


def test_a_success_resets_the_count() -> None:
    reach = _reach([])
    for _ in range(2):
        reach.observe(REFUSED)
    reach.observe(None)
    for _ in range(2):
        reach.observe(REFUSED)
    assert not reach.down


def test_a_held_circuit_refuses_with_the_message_until_released() -> None:
    breaker = CircuitBreaker("lmstudio", CircuitPolicy(cooldown_s=0.001))
    breaker.hold("lmstudio is unreachable at http://127.0.0.1:1234", retry_after_s=2)
    assert breaker.snapshot()["state"] == "open"
    with pytest.raises(errors.Unavailable, match=r"unreachable at http://127\.0\.0\.1:1234") as caught:
        breaker.check()  # the cooldown has long passed: no half-open probe while held
    assert caught.value.retry_after_s == 2
    breaker.release_hold()
    breaker.check()
    assert breaker.snapshot() == {"state": "closed", "failures": 0}


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:secret@api.example.test/v1?key=abc#x", "https://api.example.test/v1"),
    ("http://127.0.0.1:1234", "http://127.0.0.1:1234"),
    ("http://[::1]:8080/base", "http://[::1]:8080/base"),
])
def test_display_url_never_shows_credentials(url: str, shown: str) -> None:
    assert display_url(url) == shown

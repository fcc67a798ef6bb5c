"""Circuit breakers per provider and per model.

closed ──N consecutive failures──▶ open ──cooldown──▶ half-open ──probe ok──▶ closed
                                     ▲                    │
                                     └─── probe failed ───┘

While open, calls fail at once with ``unavailable`` and the remaining cooldown as
retry-after, so a dead provider costs the caller nothing but a fast error (and lets the
gateway fall back). Only failures that say something about the provider's health count:
a bad request or a rate limit does not open the circuit (``ErrorPolicy.circuit`` in
``shared.errors`` says which do).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shared import errors
from shared.logs import log_event
from workers.config_record import CircuitRecord

__all__ = ["CircuitBreaker", "Circuits", "counts_against_health"]

log = logging.getLogger("workers.circuit")

State = Literal["closed", "open", "half_open"]

def counts_against_health(error: errors.LLMCallerError) -> bool:
    """Whether ``error`` says something about the provider's health: its type's policy decides."""
    return error.policy.circuit


@dataclass
class CircuitBreaker:
    key: str
    policy: CircuitRecord
    clock: Callable[[], float] = time.monotonic
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    # Held open from outside (the provider is unreachable): this message, until released.
    held: str | None = None
    held_retry_s: float = 1.0

    def check(self) -> None:
        """Raise Unavailable while open or held; in half-open let exactly one probe through."""
        if self.held is not None:
            raise errors.Unavailable(self.held, retry_after_s=self.held_retry_s)
        if self.state == "closed":
            return
        remaining = self.opened_at + self.policy.cooldown_s - self.clock()
        if self.state == "open" and remaining <= 0:
            self._move("half_open")
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return
        raise errors.Unavailable(
            f"circuit open for {self.key} after {self.failures} consecutive failures; "
            f"retry in {max(remaining, 0.1):.1f}s",
            retry_after_s=round(max(remaining, 0.1), 3),
        )

    def success(self) -> None:
        self.failures = 0
        self.probing = False
        if self.state != "closed":
            self._move("closed")

    def failure(self, error: errors.LLMCallerError) -> None:
        if not counts_against_health(error):
            self.probing = False
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.policy.failure_threshold:
            self.opened_at = self.clock()
            self.probing = False
            if self.state != "open":
                self._move("open", error=error.type)

    def hold(self, message: str, retry_after_s: float) -> None:
        """Keep the circuit open whatever the cooldown says, until ``release``; calls get ``message``."""
        if self.held is None:
            log_event(log, "circuit_open", level=logging.WARNING, circuit=self.key, failures=self.failures,
                      error="connection", held=True)
        self.held, self.held_retry_s = message, retry_after_s

    def release_hold(self) -> None:
        """The outside reason is gone: close (the provider answered a probe)."""
        if self.held is None:
            return
        self.held = None
        if self.state == "closed":  # success() logs only a change of state
            log_event(log, "circuit_closed", circuit=self.key, failures=self.failures)
        self.success()

    def snapshot(self) -> dict[str, object]:
        if self.held is not None:
            return {"state": "open", "failures": self.failures, "held": "unreachable"}
        return {"state": self.state, "failures": self.failures}

    def _move(self, state: State, **fields: object) -> None:
        log_event(log, "circuit_" + state, level=logging.WARNING if state == "open" else logging.INFO,
                  circuit=self.key, failures=self.failures, **fields)
        self.state = state


class Circuits:
    """One breaker for the provider as a whole and one per model."""

    def __init__(self, provider: str, policy: CircuitRecord, clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.policy = policy
        self._clock = clock
        self.whole = CircuitBreaker(provider, policy, clock)
        self.models: dict[str, CircuitBreaker] = {}

    def for_model(self, model: str) -> CircuitBreaker:
        breaker = self.models.get(model)
        if breaker is None:
            breaker = self.models[model] = CircuitBreaker(f"{self.provider}/{model}", self.policy, self._clock)
        return breaker

    def check(self, model: str) -> None:
        self.whole.check()
        try:
            self.for_model(model).check()
        except errors.Unavailable:
            if self.whole.probing:
                self.whole.probing = False  # the probe slot was not used
            raise

    def record(self, model: str, error: errors.LLMCallerError | None) -> None:
        for breaker in (self.whole, self.for_model(model)):
            if error is None:
                breaker.success()
            else:
                breaker.failure(error)

    def release(self, model: str) -> None:
        """A call ended with no verdict (cancelled, or refused before it ran): free any probe slot."""
        self.whole.probing = False
        self.for_model(model).probing = False

    def snapshot(self) -> dict[str, object]:
        opened = {m: b.state for m, b in self.models.items() if b.state != "closed"}
        return {**self.whole.snapshot(), "models": opened}

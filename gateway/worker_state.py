"""What the gateway knows about one worker, from its READY and its heartbeats."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.worker_counters import CounterTotals
from shared.messages import Health, Ready, WorkerStatus
from shared.models import ModelInfo

__all__ = ["WorkerState"]


@dataclass
class WorkerState:
    name: str
    max_concurrency: int = 32
    kind: str = "unknown"
    capabilities: list[str] = field(default_factory=list)
    models: list[ModelInfo] = field(default_factory=list)
    # "ready", "unconfigured" or "degraded", as the worker reports itself.
    status: WorkerStatus = "unknown"
    # Why the worker is not ready (unconfigured, or its provider unreachable), and since when.
    reason: str | None = None
    degraded_since: str | None = None
    last_error: str | None = None
    incarnation: str | None = None
    pid: int | None = None
    up: bool = False
    last_seen: float = 0.0
    restarts_seen: int = 0
    # From the worker's heartbeat: circuit breaker state and its resilience counters.
    circuit: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    # The same counters summed over every process that served this name: never go down.
    counter_totals: CounterTotals = field(default_factory=CounterTotals)
    inflight: set[str] = field(default_factory=set)
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.max_concurrency)

    def apply_ready(self, ready: Ready, now: float) -> None:
        self.kind = ready.kind or self.kind
        self.capabilities = ready.capabilities
        self.incarnation = ready.incarnation
        self.pid = ready.pid
        self.apply_health(ready.health, now)
        self.up = True
        self.ready_event.set()

    def apply_health(self, health: Health | None, now: float) -> None:
        """A heartbeat (``None``: one without a payload, which only proves the worker alive)."""
        self.last_seen = now
        if health is None:
            return
        self.status = health.status
        self.reason = health.reason
        self.degraded_since = health.degraded_since
        self.last_error = health.last_error
        if health.circuit is not None:
            self.circuit = health.circuit
        if health.counters is not None:
            self.counters = health.counters
            self.counter_totals.observe(self.incarnation, self.counters)
        if health.models is not None:
            self.models = health.models

    def mark_down(self) -> None:
        self.up = False
        self.ready_event.clear()

    def heartbeat_age(self, now: float | None = None) -> float | None:
        if not self.last_seen:
            return None
        return (now if now is not None else time.monotonic()) - self.last_seen

    def circuit_open(self, model: str) -> bool:
        """Whether the worker last reported its circuit open for the provider or this model."""
        if self.circuit.get("state") == "open":
            return True
        models: dict[str, str] = self.circuit.get("models", {})
        return models.get(model) == "open"

    def unreachable(self) -> str | None:
        """The worker's own account of why its provider cannot be reached now, if it is degraded."""
        return self.reason if self.up and self.status == "degraded" else None

    def model_ids(self, capability: str) -> list[str]:
        """Models offering ``capability`` that can serve now (LM Studio: loaded, or state unknown)."""
        return [m.id for m in self.models if capability in m.capabilities and m.loaded is not False]

    def unloaded_ids(self, capability: str) -> list[str]:
        """Models the provider lists for ``capability`` but has not loaded (LM Studio)."""
        return [m.id for m in self.models if capability in m.capabilities and m.loaded is False]

"""What the gateway's routing needs from a broker: the seam between ``GatewayService`` and
the worker link.

``gateway.broker.WorkerBroker`` is the real one (ZeroMQ, heartbeats, in-flight table);
``gateway.fake_broker.FakeBroker`` answers in-process from a plain function, so the
service's routing, fallback and interruption logic can be tested in milliseconds, as
httpx ships a mock transport beside its real ones.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from gateway.worker_state import WorkerState
from shared.messages import Op
from shared.models import TextDelta

__all__ = ["Broker", "BrokerEvent"]

# What a call yields: each streamed delta, then the worker's reply as a wire dict.
BrokerEvent = TextDelta | dict[str, Any]


class Broker(Protocol):
    """The broker's interface as ``GatewayService`` uses it."""

    def worker(self, name: str) -> WorkerState:
        """What is known about ``name``'s worker (a fresh, down state if nothing yet)."""
        ...

    def now(self) -> float:
        """The clock heartbeat ages are measured on."""
        ...

    def call(
        self, provider: str, op: Op, request: dict[str, Any], timeout_s: float, request_id: str | None = None
    ) -> AsyncGenerator[BrokerEvent, None]:
        """Run one call on ``provider``'s worker: yield each delta, then the reply dict.

        Raises ``shared.errors.LLMCallerError`` for every failure; closing the generator
        early cancels the call.
        """
        ...

"""An in-process broker driven by a plain function: the test seam for ``GatewayService``.

Give it a handler that receives each ``FakeCall`` and returns the events the worker
would send: ``TextDelta`` pieces, then the reply dict. An ``LLMCallerError`` instance in
that sequence is raised at that point (a stream that breaks after some chunks); the
handler may also raise one directly (a call that fails before any output)::

    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.provider == "main":
            raise errors.ProviderError("HTTP 500")
        return [TextDelta("hi"), ChatResult("hi", call.request["model"]).to_wire()]

    service = GatewayService(providers, FakeBroker(handler))

Workers are up and ready unless a test says otherwise through ``worker(name)`` (set
``up``, ``circuit``, ``models``). Every call is recorded in ``calls``; a call whose
generator the service closed before the reply (the caller went away) in ``closed``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.broker_base import BrokerEvent
from gateway.worker_state import WorkerState
from shared import errors
from shared.messages import Op

__all__ = ["FakeBroker", "FakeCall", "FakeEvent", "FakeHandler"]

FakeEvent = BrokerEvent | errors.LLMCallerError
FakeHandler = Callable[["FakeCall"], Iterable[FakeEvent]]


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One call as the service sent it to a worker."""

    provider: str
    op: Op
    request: dict[str, Any]
    timeout_s: float
    request_id: str | None


class FakeBroker:
    """``gateway.broker_base.Broker`` answered by ``handler``, without processes or sockets."""

    def __init__(self, handler: FakeHandler, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._handler = handler
        self._clock = clock
        self._workers: dict[str, WorkerState] = {}
        self.calls: list[FakeCall] = []
        self.closed: list[str | None] = []

    def worker(self, name: str) -> WorkerState:
        state = self._workers.get(name)
        if state is None:
            state = WorkerState(name=name, up=True, status="ready")
            self._workers[name] = state
        return state

    def now(self) -> float:
        return self._clock()

    async def call(
        self, provider: str, op: Op, request: dict[str, Any], timeout_s: float, request_id: str | None = None
    ) -> AsyncGenerator[BrokerEvent, None]:
        """Like ``WorkerBroker.call``: a down worker is ``unavailable``; events come from the handler."""
        call = FakeCall(provider, op, request, timeout_s, request_id)
        self.calls.append(call)
        if not self.worker(provider).up:
            raise errors.Unavailable(f"the {provider} worker is not running", provider=provider)
        finished = False
        try:
            for event in self._handler(call):
                if isinstance(event, errors.LLMCallerError):
                    raise event
                finished = isinstance(event, dict)
                yield event
                await asyncio.sleep(0)  # a real stream hands control back between frames
        except GeneratorExit:
            if not finished:
                self.closed.append(request_id)
            raise

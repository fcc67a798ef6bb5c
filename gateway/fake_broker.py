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

A ``Hold`` in the sequence makes the worker send nothing until the test releases it
(a slow provider, or a call in flight to cancel); like the real broker's deadline, a hold
that outlasts the call's ``timeout_s`` ends the call with ``timeout``. ``holding`` lists
the request ids of calls waiting in a hold: a test polls it instead of sleeping. A handler
written as a generator runs lazily, event by event, so it can change worker state mid-call
(e.g. mark the worker down just before raising ``WorkerLost``).

Workers are up and ready unless a test says otherwise through ``worker(name)`` (set
``up``, ``circuit``, ``models``). Every call is recorded in ``calls``; a call that ended
without its reply or error (closed early, cancelled, past its deadline: the real broker
sends CANCEL then) in ``closed``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.broker_base import BrokerEvent
from gateway.worker_state import WorkerState
from shared import errors
from shared.messages import Op
from shared.models import TextDelta

__all__ = ["FakeBroker", "FakeCall", "FakeEvent", "FakeHandler", "Hold"]


@dataclass(frozen=True, slots=True)
class Hold:
    """The worker sends nothing until ``release`` is set (never, unless a test sets it)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)


FakeEvent = BrokerEvent | errors.LLMCallerError | Hold
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
        self.holding: list[str | None] = []  # request ids of calls now waiting in a ``Hold``

    def worker(self, name: str) -> WorkerState:
        state = self._workers.get(name)
        if state is None:
            state = WorkerState(name=name, up=True, status="ready")
            self._workers[name] = state
        return state

    def workers(self) -> list[WorkerState]:
        """Every worker asked about so far, as ``WorkerBroker.workers`` (read by the metrics collector)."""
        return list(self._workers.values())

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
        deadline = asyncio.get_running_loop().time() + timeout_s
        ended = False  # the worker sent its reply or its error: nothing left to cancel
        try:
            for event in self._answers(call):
                if isinstance(event, Hold):
                    await self._hold(call, event, deadline)
                    continue
                ended = not isinstance(event, TextDelta)
                if isinstance(event, errors.LLMCallerError):
                    raise event
                yield event
                await asyncio.sleep(0)  # a real stream hands control back between frames
        finally:
            if not ended:  # closed early, cancelled or past its deadline: the real broker sends CANCEL
                self.closed.append(request_id)

    def _answers(self, call: FakeCall) -> Iterator[FakeEvent]:
        """The handler's events; an error it raises instead of returning is its last event."""
        try:
            yield from self._handler(call)
        except errors.LLMCallerError as exc:
            yield exc

    async def _hold(self, call: FakeCall, hold: Hold, deadline: float) -> None:
        """Wait for the test to release ``hold``; past the call's deadline, fail as the real broker does."""
        self.holding.append(call.request_id)
        try:
            async with asyncio.timeout_at(deadline):
                await hold.release.wait()
        except TimeoutError:
            raise errors.Timeout(f"{call.provider} did not finish within the call's deadline",
                                 provider=call.provider) from None
        finally:
            self.holding.remove(call.request_id)

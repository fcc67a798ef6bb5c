"""The gateway end of the worker link: a ZeroMQ ROUTER, heartbeats and the in-flight table.

Each worker connects a DEALER whose identity is its provider name. The broker:

* learns workers from READY and keeps their health from heartbeats; a worker silent for
  ``liveness`` heartbeats is marked down, and a READY from a known identity with a new
  incarnation means that worker restarted;
* sends each call to its worker and hands the worker's ACCEPTED / CHUNK / REPLY / ERROR
  frames back to the waiting caller, with a deadline on every wait;
* when a worker dies, fails the calls it had *accepted* with ``worker_lost`` and re-sends
  the ones it never accepted (they cost nothing yet), within their deadlines;
* bounds concurrency per worker, so back-pressure is a fast ``unavailable`` error and
  never a silent drop in libzmq buffers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from gateway.worker_state import WorkerState
from shared import errors
from shared.logs import log_event
from shared.models import TextDelta
from shared.protocol import Command, Frame, ProtocolError, decode, encode

__all__ = ["WorkerBroker"]

log = logging.getLogger("gateway.broker")


class _Resend:
    """Queue marker: the worker died before accepting this call, so it may be sent again."""


_RESEND = _Resend()
_QueueItem = Frame | errors.LLMCallerError | _Resend


@dataclass
class _Call:
    request_id: str
    worker: str
    accepted: bool = False
    finished: bool = False
    queue: asyncio.Queue[_QueueItem] = field(default_factory=asyncio.Queue)


class WorkerBroker:
    def __init__(
        self,
        endpoint: str,
        *,
        heartbeat_s: float = 0.5,
        liveness: int = 4,
        concurrency: dict[str, int] | None = None,
        ready_wait_s: float = 5.0,
        slot_wait_s: float = 2.0,
    ) -> None:
        self.endpoint = endpoint
        self.heartbeat_s = heartbeat_s
        self.liveness = liveness
        self.ready_wait_s = ready_wait_s
        self.slot_wait_s = slot_wait_s
        self._concurrency = concurrency or {}
        self._workers: dict[str, WorkerState] = {}
        self._calls: dict[str, _Call] = {}
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # A send to an unknown or vanished peer fails at once instead of vanishing.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A restarted worker reuses its identity; let the new connection take it over.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self.endpoint.startswith("ipc://"):
            path = self.endpoint.removeprefix("ipc://")
            if os.path.exists(path):
                os.unlink(path)  # stale socket from a previous run
        sock.bind(self.endpoint)
        self._sock = sock
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="broker-receive"),
            asyncio.create_task(self._heartbeat_loop(), name="broker-heartbeat"),
        ]
        log_event(log, "broker_listening", endpoint=self.endpoint)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for call in list(self._calls.values()):
            call.queue.put_nowait(errors.Unavailable("the gateway is shutting down", retry_after_s=2))
        if self._sock is not None:
            self._sock.close(linger=0)
        self._ctx.term()

    # ----------------------------------------------------------------- queries

    def worker(self, name: str) -> WorkerState:
        state = self._workers.get(name)
        if state is None:
            state = WorkerState(name=name, max_concurrency=self._concurrency.get(name, 32))
            self._workers[name] = state
        return state

    def workers(self) -> list[WorkerState]:
        return list(self._workers.values())

    def now(self) -> float:
        """The clock heartbeat ages are measured on (the event loop's monotonic time)."""
        return asyncio.get_running_loop().time()

    # ----------------------------------------------------------------- calls

    async def call(
        self, provider: str, op: str, request: dict[str, Any], timeout_s: float, request_id: str | None = None
    ) -> AsyncGenerator[TextDelta | dict[str, Any], None]:
        """Run one call on ``provider``'s worker: yield each streamed delta, then the reply dict.

        Raises an ``errors.LLMCallerError`` for every failure, including the deadline.
        Closing the generator early (the client went away) cancels the call at the worker.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        state = self.worker(provider)
        await self._take_slot(state, deadline)
        call = _Call(request_id=request_id or uuid.uuid4().hex, worker=provider)
        self._calls[call.request_id] = call
        try:
            await self._send_request(state, call, op, request, deadline)
            while True:
                item = await self._next_item(call, provider, deadline)
                if isinstance(item, _Resend):
                    await self._send_request(state, call, op, request, deadline)
                    continue
                if isinstance(item, errors.LLMCallerError):
                    raise item
                if item.command is Command.CHUNK:
                    yield TextDelta(item.payload["text"])
                elif item.command is Command.REPLY:
                    call.finished = True
                    yield item.payload
                    return
                elif item.command is Command.ERROR:
                    call.finished = True
                    raise errors.error_from_payload(item.payload)
        finally:
            self._calls.pop(call.request_id, None)
            state.inflight.discard(call.request_id)
            state.slots.release()
            if not call.finished and call.accepted and state.up:
                await self._send(provider, Command.CANCEL, call.request_id)

    async def _take_slot(self, state: WorkerState, deadline: float) -> None:
        wait = min(self.slot_wait_s, deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await state.slots.acquire()
        except TimeoutError:
            raise errors.Unavailable(
                f"{state.name} is at its concurrency limit ({state.max_concurrency} calls); retry shortly",
                provider=state.name,
                retry_after_s=1.0,
            ) from None

    async def _next_item(self, call: _Call, provider: str, deadline: float) -> _QueueItem:
        try:
            async with asyncio.timeout_at(deadline):
                return await call.queue.get()
        except TimeoutError:
            raise errors.Timeout(f"{provider} did not finish within the call's deadline", provider=provider) from None

    async def _send_request(
        self, state: WorkerState, call: _Call, op: str, request: dict[str, Any], deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_until_up(state, deadline)
            remaining = deadline - loop.time()
            payload = {"op": op, "request": request, "timeout_s": remaining}
            if await self._send(state.name, Command.REQUEST, call.request_id, payload):
                state.inflight.add(call.request_id)
                return
            # The worker vanished between READY and now; it never saw the request.
            self._worker_gone(state, "its connection closed")

    async def _wait_until_up(self, state: WorkerState, deadline: float) -> None:
        if state.up:
            return
        wait = min(self.ready_wait_s, deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await state.ready_event.wait()
        except TimeoutError:
            raise errors.Unavailable(
                f"the {state.name} worker is not running; it may be restarting, retry shortly",
                provider=state.name,
                retry_after_s=2.0,
            ) from None

    async def _send(self, worker: str, command: Command, request_id: str = "", payload: Any = None) -> bool:
        assert self._sock is not None
        try:
            await self._sock.send_multipart([worker.encode(), *encode(command, request_id, payload)])
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return False
            raise
        return True

    # ----------------------------------------------------------------- incoming

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            parts = await self._sock.recv_multipart()
            try:
                name = parts[0].decode("ascii")
                frame = decode(parts[1:])
            except (ProtocolError, UnicodeDecodeError) as exc:
                log_event(log, "worker_message_dropped", level=logging.WARNING, reason=str(exc))
                continue
            try:
                await self._dispatch(name, frame)
            except Exception:
                # One bad message must not take the gateway's link down.
                log.exception("worker_message_failed", extra={"worker": name})

    async def _dispatch(self, name: str, frame: Frame) -> None:
        now = asyncio.get_running_loop().time()
        command = frame.command
        if command is Command.READY:
            self._on_ready(name, frame.payload or {}, now)
        elif command is Command.HEARTBEAT:
            state = self._workers.get(name)
            if state is None or not state.up:
                # We do not know this worker (gateway restarted) or had given up on it
                # (it was frozen): ask it to register again instead of trusting a heartbeat.
                await self._send(name, Command.DISCONNECT)
            else:
                state.apply_health(frame.payload, now)
        elif command is Command.DISCONNECT:
            state = self._workers.get(name)
            if state is not None:
                self._worker_gone(state, "it shut down")
        else:
            self._route_to_call(name, frame, now)

    def _route_to_call(self, name: str, frame: Frame, now: float) -> None:
        state = self._workers.get(name)
        if state is not None:
            state.last_seen = now
        call = self._calls.get(frame.request_id)
        if call is None:
            return  # a late answer to a call that already timed out or was cancelled
        if call.worker != name:
            log_event(log, "answer_from_wrong_worker", level=logging.WARNING, worker=name, expected=call.worker)
            return
        if frame.command is Command.ACCEPTED:
            # Marked on arrival, not when the caller dequeues it: if the worker dies with
            # this frame still queued, the call must count as accepted and never be re-sent.
            call.accepted = True
            return
        call.queue.put_nowait(frame)

    def _on_ready(self, name: str, payload: dict[str, Any], now: float) -> None:
        state = self.worker(name)
        incarnation = payload.get("incarnation")
        if state.incarnation is not None and incarnation != state.incarnation:
            state.restarts_seen += 1
            self._fail_inflight(state, "it restarted")
            log_event(log, "worker_restarted", level=logging.WARNING, worker=name, pid=payload.get("pid"))
        state.apply_ready(payload, now)
        log_event(log, "worker_ready", worker=name, status=state.status, pid=state.pid)

    # ----------------------------------------------------------------- failure

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_s)
            now = loop.time()
            for state in list(self._workers.values()):
                if not state.up:
                    continue
                if now - state.last_seen > self.heartbeat_s * self.liveness:
                    self._worker_gone(state, f"it missed {self.liveness} heartbeats")
                elif not await self._send(state.name, Command.HEARTBEAT):
                    self._worker_gone(state, "its connection closed")

    def _worker_gone(self, state: WorkerState, why: str) -> None:
        if state.up:
            log_event(log, "worker_down", level=logging.WARNING, worker=state.name, reason=why)
        state.mark_down()
        self._fail_inflight(state, why)

    def _fail_inflight(self, state: WorkerState, why: str) -> None:
        for request_id in list(state.inflight):
            call = self._calls.get(request_id)
            state.inflight.discard(request_id)
            if call is None:
                continue
            if call.accepted:
                call.queue.put_nowait(
                    errors.WorkerLost(
                        f"the {state.name} worker stopped while handling this call ({why}); "
                        "the call was not repeated, retry it if you still need the answer",
                        provider=state.name,
                        request_id=request_id,
                        retry_after_s=1.0,
                    )
                )
            else:
                call.queue.put_nowait(_RESEND)

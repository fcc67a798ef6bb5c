"""The gateway end of the worker link: a ZeroMQ ROUTER, heartbeats and the in-flight table.

Each worker connects a DEALER and proves which provider it serves with the handshake in
``shared.protocol`` (``gateway.link_security`` checks it and every signature after it;
over tcp:// CurveZMQ also stamps each message with the provider its key belongs to).
The broker:

* learns workers from a verified READY and keeps their health from heartbeats; a worker
  silent for ``liveness`` heartbeats is marked down, and a READY for a known provider
  with a new incarnation means that worker restarted;
* sends each call to its worker and hands the worker's ACCEPTED / CHUNK / REPLY / ERROR
  frames back to the waiting caller, with a deadline on every wait;
* when a worker dies, fails the calls it had *accepted* with ``worker_lost`` and re-sends
  the ones it never accepted (they cost nothing yet), within their deadlines;
* bounds concurrency per worker, so back-pressure is a fast ``unavailable`` error and
  never a silent drop in libzmq buffers;
* reports worker_ready, worker_restarted, worker_down and link_auth_failed to ``on_event``
  (audit log, metrics) as well as to its log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from gateway.curve_auth import WorkerKeyAuthenticator, fingerprint, make_curve_server, user_id
from gateway.link_security import GatewayLink, LinkRejected, prepare_ipc_endpoint
from gateway.worker_state import WorkerState
from shared import errors
from shared.link_keys import CurveServerKeys
from shared.link_session import FailureThrottle
from shared.logs import log_event
from shared.loop_socket import LoopSocket
from shared.messages import Health, Op, Ready, WorkRequest
from shared.models import TextDelta
from shared.protocol import Command, Frame, ProtocolError, decode, encode, unpack
from shared.timeline import mark

__all__ = ["EventHook", "WorkerBroker"]

# (event name, fields) for the audit log and metrics; fields never hold key material.
EventHook = Callable[[str, dict[str, Any]], None]

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
        link_key: bytes,
        workers: Collection[str],
        curve: CurveServerKeys | None = None,
        on_event: EventHook | None = None,
        heartbeat_s: float = 0.5,
        liveness: int = 4,
        concurrency: dict[str, int] | None = None,
        ready_wait_s: float = 5.0,
        slot_wait_s: float = 2.0,
        auth_report_interval_s: float = 1.0,
    ) -> None:
        if endpoint.startswith("tcp://") and curve is None:
            raise ValueError("a tcp:// worker endpoint needs CurveZMQ keys (LLMC_CURVE_DIR); see decision D11")
        self.endpoint = endpoint
        self._curve = curve
        self._on_event = on_event
        self._known = frozenset(workers)
        # Handshakes must finish well within a worker's re-announce period.
        self._link = GatewayLink(link_key, workers, curve=curve is not None,
                                 handshake_timeout_s=max(2.0, heartbeat_s * liveness))
        # At most one link_auth_failed per (reason, claimed worker) per interval, with a count.
        self._throttle = FailureThrottle(auth_report_interval_s)
        self._auth: WorkerKeyAuthenticator | None = None
        self.heartbeat_s = heartbeat_s
        self.liveness = liveness
        self.ready_wait_s = ready_wait_s
        self.slot_wait_s = slot_wait_s
        self._concurrency = concurrency or {}
        self._workers: dict[str, WorkerState] = {}
        self._calls: dict[str, _Call] = {}
        self._ctx = zmq.asyncio.Context()
        self._sock: LoopSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        sock: zmq.Socket[bytes] = zmq.Socket(self._ctx, zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        # A send to an unknown or vanished connection fails at once instead of vanishing.
        # (No ROUTER_HANDOVER: workers set no identity, and no peer may take over another's
        # connection id; see D11.)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if self._curve is not None:
            self._auth = WorkerKeyAuthenticator(self._ctx, self._curve, self._curve_key_denied)
            make_curve_server(sock, self._curve)
        if self.endpoint.startswith("ipc://"):
            prepare_ipc_endpoint(self.endpoint)
        sock.bind(self.endpoint)
        # copy=False: only a zmq.Frame carries the CURVE User-Id metadata.
        self._sock = LoopSocket(sock, copy=False)
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
        if self._auth is not None:
            self._auth.stop()
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
        self, provider: str, op: Op, request: dict[str, Any], timeout_s: float, request_id: str | None = None
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
                    mark("gateway.reply")
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
        self, state: WorkerState, call: _Call, op: Op, request: dict[str, Any], deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_until_up(state, deadline)
            remaining = deadline - loop.time()
            payload = WorkRequest(op, request, remaining).to_wire()
            mark("gateway.to_worker")
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
        """Send a signed message to ``worker``'s connection; False if it has none (left, or never proved itself)."""
        frames = self._link.frames_to(worker, command, request_id, payload)
        return frames is not None and await self._send_frames(frames)

    async def _send_frames(self, frames: list[bytes]) -> bool:
        assert self._sock is not None
        try:
            await self._sock.send_multipart(frames)
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
                await self._on_message(parts)
            except Exception:
                # One bad message must not take the gateway's link down.
                log.exception("worker_message_failed")

    async def _on_message(self, parts: list[zmq.Frame]) -> None:
        route = parts[0].bytes
        try:
            frames = unpack([p.bytes for p in parts[1:]])
            frame = decode(frames)
        except ProtocolError as exc:
            log_event(log, "worker_message_dropped", level=logging.WARNING, reason=str(exc))
            return
        claimed_by = user_id(parts[-1]) if self._curve is not None else None
        now = asyncio.get_running_loop().time()
        try:
            if frame.command is Command.HELLO:
                await self._send_frames([route, *self._link.on_hello(route, frame.payload, claimed_by, now)])
            elif frame.command is Command.READY:
                session = self._link.on_ready(route, frame.payload, frames, claimed_by, now)
                self._on_ready(session.name, Ready.from_wire(frame.payload), now)
            elif (peer := self._link.admit(route, frames, claimed_by)) is not None:
                await self._dispatch(peer.session.name, route, frame, now)
            elif frame.command is Command.HEARTBEAT:
                # A session we do not know (the gateway restarted): ask for a new handshake.
                await self._send_frames([route, *encode(Command.DISCONNECT)])
        except LinkRejected as exc:
            self._link_auth_failed(exc)
        except ProtocolError as exc:
            # Signed, so from a worker of ours, yet not the shape shared.messages defines.
            log_event(log, "worker_message_dropped", level=logging.WARNING, reason=str(exc))

    async def _dispatch(self, name: str, route: bytes, frame: Frame, now: float) -> None:
        command = frame.command
        if command is Command.HEARTBEAT:
            state = self._workers.get(name)
            if state is None or not state.up:
                # We had given up on this worker (it was frozen): ask it to handshake again
                # instead of trusting a heartbeat.
                self._link.forget(name)
                await self._send_frames([route, *encode(Command.DISCONNECT)])
            else:
                state.apply_health(Health.from_wire(frame.payload) if frame.payload else None, now)
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
            mark("gateway.accepted")
            return
        call.queue.put_nowait(frame)

    def _on_ready(self, name: str, ready: Ready, now: float) -> None:
        state = self.worker(name)
        if state.incarnation is not None and ready.incarnation != state.incarnation:
            state.restarts_seen += 1
            self._fail_inflight(state, "it restarted")
            self._emit("worker_restarted", logging.WARNING, worker=name, pid=ready.pid)
        state.apply_ready(ready, now)
        self._emit("worker_ready", logging.INFO, worker=name, status=state.status, pid=state.pid)

    # ----------------------------------------------------------------- reporting

    def _emit(self, event: str, level: int, **fields: Any) -> None:
        log_event(log, event, level=level, **fields)
        if self._on_event is None:
            return
        try:
            self._on_event(event, fields)
        except Exception:
            # Observability must never break the link it observes.
            log.exception("broker_event_hook_failed", extra={"hook_event": event})

    def _link_auth_failed(self, exc: LinkRejected) -> None:
        # Names (and key fingerprints) we do not know share one throttle slot: a peer
        # inventing a new one per message must not get one report per message.
        who = exc.claimed if exc.claimed in self._known else "*"
        suppressed = self._throttle.admit((exc.reason, who))
        if suppressed is None:
            return
        self._emit("link_auth_failed", logging.WARNING, reason=exc.reason, worker=exc.claimed,
                   authenticated_as=exc.authenticated, suppressed=suppressed or None)

    def _curve_key_denied(self, z85_key: bytes) -> None:
        self._link_auth_failed(LinkRejected("unknown_curve_key", f"key:{fingerprint(z85_key)}"))

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
            self._emit("worker_down", logging.WARNING, worker=state.name, reason=why)
        # Nothing more is signed for it: it must handshake again before work flows.
        self._link.forget(state.name)
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

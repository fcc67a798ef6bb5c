"""The worker process's event loop: one DEALER to the gateway, one adapter to the provider.

A worker opens a session with HELLO; once the gateway's CHALLENGE proves it holds the
link key, the worker registers with a signed READY carrying its own proof (handshake in
``shared.protocol``, checks in ``workers.link_security``), then serves REQUESTs
concurrently. It serves nothing that is not signed under that session. For each request
it sends ACCEPTED *before* touching the provider (from then on the call may cost money,
so the gateway must never silently re-send it), then CHUNKs and one REPLY or ERROR.

Heartbeats flow both ways. The worker's heartbeat carries its health (ready,
unconfigured or degraded, last error class, in-flight count, and its models when they
change). If the gateway goes quiet, or says it does not know us, the worker handshakes
again, backing off, until the gateway answers: a gateway restart needs no worker restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import zmq

from shared import errors, otel
from shared.link_keys import CurveClientKeys
from shared.logs import log_event
from shared.loop_socket import LoopSocket
from shared.messages import Health, Op, Ready, WorkerStatus, WorkRequest
from shared.models import ChatRequest, EmbedRequest, ModelInfo, TextDelta
from shared.protocol import Command, ProtocolError, decode, unpack
from shared.redact import redact
from shared.settings import Settings
from shared.timeline import mark
from workers.config_record import ProviderRecord
from workers.http_client import AiohttpClient, HttpClient, Timeouts
from workers.link_security import WorkerLink, make_curve_client
from workers.providers.adapters import create_adapter
from workers.providers.base import ProviderAdapter
from workers.providers.registry import KINDS
from workers.resilience.caller import ResilientCaller
from workers.tracing import TRACED_OPS, mark_failed, provider_call_span

__all__ = ["WorkerRuntime"]

log = logging.getLogger("workers.runtime")

# Answer a little before the gateway's deadline so the caller gets our precise error
# (e.g. "openai timed out") rather than the gateway's generic one.
_DEADLINE_MARGIN_S = 0.05
_MAX_REANNOUNCE_S = 4.0

# One handler per operation: (request id, the op's request dict, deadline) -> None.
_Handler = Callable[[str, dict[str, Any], float], Awaitable[None]]


class WorkerRuntime:
    def __init__(
        self, name: str, config: ProviderRecord | None, secret: str | None, settings: Settings,
        *, link_key: bytes, curve: CurveClientKeys | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.settings = settings
        self.incarnation = uuid.uuid4().hex
        self._secret = secret
        self._link = WorkerLink(name, link_key, hello_interval_s=settings.heartbeat_s)
        self._curve = curve
        self._ctx = zmq.Context()
        self._sock: LoopSocket | None = None
        self._client: HttpClient | None = None
        self.adapter: ProviderAdapter | None = None
        self.caller: ResilientCaller | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._models: list[ModelInfo] = []
        self._models_dirty = True
        self._last_error: str | None = None
        self._gateway_seen = 0.0
        self._stopping = asyncio.Event()
        self._handlers: dict[Op, _Handler] = {
            Op.CHAT: self._chat, Op.CHAT_STREAM: self._chat_stream, Op.EMBED: self._embed, Op.MODELS: self._list_models,
        }
        self.status: WorkerStatus
        if config is None:
            self.status, self._why = "unconfigured", f"provider {name} is not in providers.json"
        elif KINDS[config.kind].needs_key and not secret:
            self.status, self._why = "unconfigured", f"provider {name} has no API key available"
        else:
            self.status, self._why = "ready", ""

    # ----------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        self._open_adapter()
        self._connect()
        background = [
            asyncio.create_task(self._receive_loop(), name="worker-receive"),
            asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat"),
            asyncio.create_task(self._probe_loop(), name="worker-probe"),
        ]
        log_event(log, "worker_started", provider=self.name, status=self.status, reason=self._why or None)
        await self._stopping.wait()
        await self._shutdown(background)

    def _open_adapter(self) -> None:
        if self.config is None:
            return
        t = self.config.timeouts
        self._client = AiohttpClient(Timeouts(connect_s=t.connect_s, read_s=t.read_s, pool_s=t.connect_s),
                                     max_connections=self.config.max_concurrency)
        self.adapter = create_adapter(self.name, self.config, self._secret, self._client)
        self.caller = ResilientCaller(self.name, self.config, self.adapter, on_reachability=self._reachability_changed)
        self._models = self.adapter.configured_models()

    def _connect(self) -> None:
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.DEALER)
        # No routing identity: the gateway names our connection itself and learns our
        # provider name only from the handshake (D11).
        # Let final replies drain briefly on shutdown, but never hang the process exit.
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.SNDHWM, 10_000)
        if self._curve is not None:
            make_curve_client(sock, self._curve)
        sock.connect(self.settings.worker_endpoint)
        self._sock = LoopSocket(sock)
        self._hello(force=True)

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        log_event(log, "worker_stopping", provider=self.name, inflight=len(self._tasks))
        self._send_now(Command.DISCONNECT)
        for task in [*background, *self._tasks.values()]:
            task.cancel()
        await asyncio.gather(*background, *self._tasks.values(), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        if self._sock is not None:
            self._sock.close()
        self._ctx.term()

    # ----------------------------------------------------------------- sending

    def _send_now(self, command: Command, request_id: str = "", payload: Any = None) -> None:
        """Send a signed control message without waiting: dropped, not queued, if the link is full.

        Before any gateway has proved itself there is no session to sign with, and nothing
        to tell an unproven peer: the message is not sent.
        """
        frames = self._link.frames(command, request_id, payload)
        if frames is not None:
            self._send_raw_now(frames)

    def _send_raw_now(self, frames: list[bytes]) -> None:
        assert self._sock is not None
        with contextlib.suppress(zmq.Again):
            self._sock.send_now(frames)

    def _hello(self, *, force: bool = False) -> None:
        frames = self._link.hello(asyncio.get_running_loop().time(), force=force)
        if frames is not None:
            self._send_raw_now(frames)

    async def _send(self, command: Command, request_id: str, payload: Any = None) -> None:
        assert self._sock is not None
        # Only reached while serving a verified REQUEST, so a session exists.
        frames = self._link.frames(command, request_id, payload)
        if frames is not None:
            await self._sock.send_multipart(frames)

    def _ready(self, proof: dict[str, str]) -> Ready:
        """The READY message: who we are, how we are, and our handshake proof."""
        return Ready(
            provider=self.name,
            health=self._health(include_models=True),
            kind=self.config.kind if self.config else None,
            capabilities=sorted(self.adapter.capabilities) if self.adapter else [],
            incarnation=self.incarnation,
            pid=os.getpid(),
            max_concurrency=self.config.max_concurrency if self.config else 0,
            proof=proof,
        )

    def _health(self, include_models: bool) -> Health:
        """The health every HEARTBEAT (and the READY) carries; the one place it is built."""
        health = Health(status=self.status, reason=self._why or None, last_error=self._last_error,
                        inflight=len(self._tasks))
        if self.caller is not None:
            health.degraded_since = self.caller.reach.since_iso()
            health.circuit = self.caller.circuits.snapshot()
            health.counters = self.caller.counters()
            if self.status == "ready" and self.caller.reach.down:
                # Configured, but the provider cannot be reached: say so, with the error and since when.
                health.status, health.reason = "degraded", self.caller.reach.message()
                health.last_error = errors.ConnectionFailed.type
        if include_models:
            health.models = list(self._models)
            self._models_dirty = False
        return health

    def _send_health(self, include_models: bool) -> None:
        self._send_now(Command.HEARTBEAT, "", self._health(include_models).to_wire())

    # ----------------------------------------------------------------- loops

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        while True:
            wire = await self._sock.recv_multipart()
            try:
                self._on_message(unpack(wire), loop.time())
            except Exception:
                # Whoever sent it, one bad message must not leave the worker deaf.
                log.exception("gateway_message_failed", extra={"provider": self.name})

    def _on_message(self, parts: list[bytes], now: float) -> None:
        try:
            frame = decode(parts)
        except ProtocolError as exc:
            log_event(log, "gateway_message_dropped", level=logging.WARNING, reason=str(exc))
            return
        if frame.command is Command.CHALLENGE:
            self._on_challenge(frame.payload, now)
        elif frame.command is Command.DISCONNECT:
            # Unsigned by design, and only ever a hint: the gateway does not know us (it
            # restarted, or gave up on us), so we handshake again. It grants nothing.
            self._hello()
        elif self._link.admit(parts):
            self._gateway_seen = now
            self._on_verified(frame.command, frame.request_id, frame.payload)

    def _on_challenge(self, payload: Any, now: float) -> None:
        proof = self._link.on_challenge(payload, now)
        if proof is None:
            return
        self._gateway_seen = now
        # The READY goes out signed under the session the challenge just established.
        self._send_now(Command.READY, "", self._ready(proof).to_wire())
        log_event(log, "gateway_verified", provider=self.name)

    def _on_verified(self, command: Command, request_id: str, payload: Any) -> None:
        if command is Command.REQUEST:
            self._start_request(request_id, payload)
        elif command is Command.CANCEL:
            running = self._tasks.get(request_id)
            if running is not None:
                running.cancel()

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.heartbeat_s
        self._gateway_seen = loop.time()
        reannounce = interval
        while True:
            await asyncio.sleep(interval)
            if self._link.verified:
                self._send_health(include_models=self._models_dirty)
            if loop.time() - self._gateway_seen > interval * self.settings.liveness:
                # The gateway is gone, restarting, or has not proved itself: keep opening
                # a new handshake, backing off.
                await asyncio.sleep(reannounce)
                reannounce = min(reannounce * 2, _MAX_REANNOUNCE_S)
                self._hello(force=True)
            else:
                reannounce = interval

    async def _probe_loop(self) -> None:
        """Model discovery (LM Studio) and reachability probes: the same free model listing.

        A discovering worker lists its models every ``discovery_interval_s``; any worker
        whose provider refused a connection lists them every ``probe_interval_s`` until the
        server answers (see ``workers.resilience.reachability``).
        """
        if self.caller is None or self.config is None or self.status != "ready":
            return
        discovering = KINDS[self.config.kind].discovers_models and self.config.discover_models
        loop = asyncio.get_running_loop()
        last_listing = -float("inf")
        while True:
            # A flag check every probe interval costs nothing; a listing happens only when due.
            due = discovering and loop.time() - last_listing >= self.config.discovery_interval_s
            if due or self.caller.reach.suspect:
                await self._probe(discovering)
                last_listing = loop.time()
            await asyncio.sleep(self.config.circuit.probe_interval_s)

    async def _probe(self, discovering: bool) -> None:
        assert self.caller is not None
        try:
            models = await self.caller.list_models()
        except errors.LLMCallerError as exc:
            self._last_error = exc.type
            # Once the provider is known to be unreachable, that was logged; each failed probe is not news.
            level = logging.DEBUG if self.caller.reach.down else logging.WARNING
            log_event(log, "model_discovery_failed" if discovering else "provider_probe_failed",
                      level=level, provider=self.name, error=exc.type)
            return
        if self._last_error is not None and errors.error_class(self._last_error).policy.cleared_by_answer:
            self._last_error = None  # the provider answered: that error is over
        if discovering and models != self._models:
            self._models = models
            log_event(log, "models_discovered", provider=self.name, count=len(models))
            # Tell the gateway now rather than at the next heartbeat: routing needs it.
            self._send_health(include_models=True)

    def _reachability_changed(self) -> None:
        """The provider became unreachable or reachable again: tell the gateway at once."""
        self._send_health(include_models=self._models_dirty)

    # ----------------------------------------------------------------- serving

    def _start_request(self, request_id: str, payload: Any) -> None:
        mark("worker.request_in")
        try:
            work = WorkRequest.from_wire(payload)
        except errors.InvalidRequest as exc:
            # Refused before ACCEPTED: nothing was started, so nothing can have cost money.
            task = asyncio.create_task(self._send_error(request_id, exc))
        else:
            if otel.active is None or work.op not in TRACED_OPS:  # span export off: one test
                task = asyncio.create_task(self._serve(request_id, work))
            else:
                task = asyncio.create_task(self._serve_traced(otel.active, request_id, work))
        self._tasks[request_id] = task

        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(request_id, None)

        task.add_done_callback(forget)

    async def _serve_traced(self, tracing: otel.Tracing, request_id: str, work: WorkRequest) -> None:
        kind = self.config.kind if self.config is not None else None
        with provider_call_span(tracing, self.name, kind, request_id, work):
            await self._serve(request_id, work)

    async def _serve(self, request_id: str, work: WorkRequest) -> None:
        if self.adapter is None or self.caller is None or self.status == "unconfigured":
            error = errors.Unavailable(f"{self._why}; an operator must configure it", provider=self.name)
            await self._send_error(request_id, error)
            return
        mark("worker.accept")
        await self._send(Command.ACCEPTED, request_id)
        mark("worker.to_provider")
        log_event(log, "request_accepted", level=logging.DEBUG, provider=self.name, request_id=request_id,
                  op=work.op.value)
        timeout = max(work.timeout_s - _DEADLINE_MARGIN_S, 0.01)
        deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                await self._handlers[work.op](request_id, work.request, deadline)
            self._last_error = None
        except errors.LLMCallerError as exc:
            await self._send_error(request_id, exc)
        except TimeoutError:
            await self._send_error(request_id, errors.Timeout(f"{self.name} did not answer in time"))
        except asyncio.CancelledError:
            log_event(log, "request_cancelled", provider=self.name, request_id=request_id)
            raise
        except Exception:
            log.exception("request_failed_unexpectedly", extra={"provider": self.name, "request_id": request_id})
            await self._send_error(request_id, errors.InternalError(f"unexpected failure in the {self.name} worker"))

    # One method per Op (self._handlers); each sends the call's CHUNKs and its REPLY.

    async def _chat(self, request_id: str, request: dict[str, Any], deadline: float) -> None:
        assert self.caller is not None
        result = await self.caller.chat(ChatRequest.from_wire(request), deadline)
        mark("worker.provider_done")
        await self._send(Command.REPLY, request_id, result.to_wire())
        mark("worker.reply_sent")

    async def _chat_stream(self, request_id: str, request: dict[str, Any], deadline: float) -> None:
        assert self.caller is not None
        stream = self.caller.stream_chat(ChatRequest.from_wire(request), deadline)
        async with contextlib.aclosing(stream):
            async for item in stream:
                if isinstance(item, TextDelta):
                    await self._send(Command.CHUNK, request_id, {"text": item.text})
                else:
                    await self._send(Command.REPLY, request_id, item.to_wire())

    async def _embed(self, request_id: str, request: dict[str, Any], deadline: float) -> None:
        assert self.caller is not None
        embedded = await self.caller.embed(EmbedRequest.from_wire(request), deadline)
        mark("worker.provider_done")
        await self._send(Command.REPLY, request_id, embedded.to_wire())
        mark("worker.reply_sent")

    async def _list_models(self, request_id: str, request: dict[str, Any], deadline: float) -> None:
        """On-demand discovery (getHealth refresh_models): also what heartbeats report from now on."""
        assert self.caller is not None
        models = await self.caller.list_models()
        if models != self._models:
            self._models, self._models_dirty = models, True
        await self._send(Command.REPLY, request_id, {"models": [m.to_wire() for m in models]})

    async def _send_error(self, request_id: str, exc: errors.LLMCallerError) -> None:
        exc.provider = exc.provider or self.name
        exc.request_id = request_id
        # Every error leaves the worker here, and only here: scrubbed of our key in any of
        # its forms (shared.redact; the key was registered at start), whichever code built
        # the message. The gateway, the client, metrics and traces see only this text.
        exc.message = redact(exc.message, (self._secret,) if self._secret else ())
        if exc.policy.health:
            self._last_error = exc.type
        log_event(log, "request_failed", provider=self.name, request_id=request_id, error=exc.type)
        mark_failed(exc.type)
        await self._send(Command.ERROR, request_id, exc.to_payload())

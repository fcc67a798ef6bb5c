"""The four tools: normalise the input, route, dispatch to a worker, compose the result.

Transport-independent: the MCP server (``gateway.mcp_server``) calls ``GatewayService``
with the validated arguments, the calling client and a progress callback.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from gateway.broker import WorkerBroker
from gateway.compose import chat_output, embed_output
from gateway.router import Route, Router
from gateway.tool_schemas import (
    ChatInput,
    ChatOutput,
    EmbedInput,
    EmbedOutput,
    HealthOutput,
    ModelOut,
    WorkerHealthOut,
)
from shared import errors
from shared.config import ClientEntry, ProvidersFile
from shared.logs import log_event
from shared.models import Capability, ChatRequest, EmbedRequest, Message, TextDelta

__all__ = ["GatewayService", "ProgressFn"]

log = logging.getLogger("gateway.calls")
VERSION = "0.1.0"

ProgressFn = Callable[[int, str], Awaitable[None]]


class GatewayService:
    def __init__(self, providers: ProvidersFile, broker: WorkerBroker) -> None:
        self.providers = providers
        self.broker = broker
        self.router = Router(providers, self._live_models, lambda p: broker.worker(p).up)
        self.started = time.monotonic()

    def _live_models(self, provider: str, capability: Capability) -> list[str]:
        return self.broker.worker(provider).model_ids(capability)

    def _timeout(self, route: Route, requested: float | None) -> float:
        return requested or self.providers.providers[route.provider].timeouts.total_s

    # ----------------------------------------------------------------- chat

    async def chat(
        self, args: ChatInput, client: ClientEntry | None, progress: ProgressFn | None = None
    ) -> ChatOutput:
        capability: Capability = "chatStream" if progress is not None else "chat"
        route = self.router.route(capability, args.provider, args.model, client)
        request = ChatRequest(
            model=route.model,
            messages=_messages(args),
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            stream=progress is not None,
        )
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        op = "chat_stream" if progress is not None else "chat"
        parts: list[str] = []
        reply: dict[str, Any] | None = None
        try:
            events = self.broker.call(
                route.provider, op, request.to_wire(), self._timeout(route, args.timeout_s), request_id
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                        if progress is not None:
                            await progress(len(parts), event.text)
                    else:
                        reply = event
        except errors.LLMCallerError as exc:
            exc.request_id = exc.request_id or request_id
            if parts:
                raise _interrupted(exc, parts, route) from None
            raise
        assert reply is not None
        latency = (time.perf_counter() - started) * 1000
        self._log_call(op, route, request_id, latency, "ok")
        return chat_output(reply, route, request_id, latency, len(parts) if progress is not None else None)

    # ----------------------------------------------------------------- embed

    async def embed(self, args: EmbedInput, client: ClientEntry | None) -> EmbedOutput:
        route = self.router.route("embed", args.provider, args.model, client)
        request = EmbedRequest(model=route.model, inputs=args.texts)
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        reply: dict[str, Any] | None = None
        events = self.broker.call(
            route.provider, "embed", request.to_wire(), self._timeout(route, args.timeout_s), request_id
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if not isinstance(event, TextDelta):
                    reply = event
        assert reply is not None
        latency = (time.perf_counter() - started) * 1000
        self._log_call("embed", route, request_id, latency, "ok")
        return embed_output(reply, route, request_id, latency)

    # ----------------------------------------------------------------- health

    def health(self) -> HealthOutput:
        workers = []
        for name, config in self.providers.providers.items():
            state = self.broker.worker(name)
            age = state.heartbeat_age(self.broker.now())
            workers.append(
                WorkerHealthOut(
                    provider=name,
                    kind=config.kind,
                    up=state.up,
                    status=state.status,
                    heartbeat_age_s=round(age, 3) if age is not None else None,
                    capabilities=state.capabilities,
                    models=[ModelOut(**m.to_wire()) for m in state.models],
                    last_error=state.last_error,
                    inflight=len(state.inflight),
                    restarts_seen=state.restarts_seen,
                )
            )
        ready = [w for w in workers if w.up and w.status == "ready"]
        status: Literal["ok", "degraded", "down"] = (
            "ok" if len(ready) == len(workers) else ("degraded" if ready else "down")
        )
        return HealthOutput(
            status=status, version=VERSION, uptime_s=round(time.monotonic() - self.started, 3), workers=workers
        )

    def _log_call(self, tool: str, route: Route, request_id: str, latency_ms: float, outcome: str) -> None:
        log_event(
            log, "call_finished", tool=tool, provider=route.provider, model=route.model,
            request_id=request_id, latency_ms=round(latency_ms, 3), outcome=outcome,
        )


def _messages(args: ChatInput) -> list[Message]:
    if args.messages is not None:
        return [Message(m.role, m.content) for m in args.messages]
    messages = [Message("system", args.system)] if args.system else []
    assert args.prompt is not None
    messages.append(Message("user", args.prompt))
    return messages


def _interrupted(exc: errors.LLMCallerError, parts: list[str], route: Route) -> errors.LLMCallerError:
    """After the first chunk nothing may be switched or repeated silently: say what was sent."""
    if isinstance(exc, errors.StreamInterrupted):
        exc.partial_text = "".join(parts)
        return exc
    return errors.StreamInterrupted(
        f"the stream from {route.provider} broke after {len(parts)} chunks ({exc.type}: {exc.message})",
        provider=route.provider,
        request_id=exc.request_id,
        retry_after_s=exc.retry_after_s,
        partial_text="".join(parts),
    )


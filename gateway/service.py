"""The tools: normalise the input, route, dispatch to a worker, compose the result.

Transport-independent: the MCP server (``gateway.mcp_server``) calls ``GatewayService``
with the validated arguments, the calling client and a progress callback.

Fallback: when the chosen route's worker is down or its circuit is open, or the call
fails before any chunk reached the client with an error whose policy allows it
(``ErrorPolicy.fallback`` in ``shared.errors``), the next fallback route is tried
within the same overall deadline, and the result says which routes were passed over and
why. After the first chunk there is no switch: the stream ends in ``stream_interrupted``
carrying the partial text.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway.broker_base import Broker
from gateway.budgets import DEFAULT_OUTPUT_TOKENS, estimate_input_tokens
from gateway.call_record import CallRecord
from gateway.chat_request import ChatCall, plain_messages
from gateway.compose import chat_output, embed_output
from gateway.ledger import LedgerWriter
from gateway.metrics import GatewayMetrics
from gateway.model_catalog import health_models, list_models
from gateway.model_features import ModelFeatures
from gateway.pricing import PriceBook, call_cost
from gateway.router import Route, Router
from gateway.store import StoreSlot
from gateway.threads import ThreadKeeper
from gateway.threads_bounds import ThreadLimits
from gateway.tool_schemas import (
    BudgetLeftOut,
    ChatInput,
    ChatOutput,
    ClientUsageOut,
    EmbedInput,
    EmbedOutput,
    HealthOutput,
    ListModelsInput,
    ListModelsOutput,
    SkippedRouteOut,
    StoreHealthOut,
    WorkerHealthOut,
)
from gateway.tracing import TraceContext
from shared import errors
from shared.chat_parts import Reasoning, ResponseFormat, SamplingParam
from shared.config import ClientEntry, ProvidersFile
from shared.logs import log_event
from shared.messages import Op
from shared.models import Capability, ChatRequest, EmbedRequest, ModelInfo, TextDelta, Usage
from shared.settings import StoreSettings
from shared.version import VERSION
from workers.providers.registry import KINDS  # declarations only (see test_layering)

__all__ = ["GatewayService", "ProgressFn"]

log = logging.getLogger("gateway.calls")

ProgressFn = Callable[[int, str], Awaitable[None]]

@dataclass
class _Attempt:
    """One call's progress across routes."""

    request_id: str
    deadline: float
    trace: TraceContext | None = None
    record: CallRecord | None = None
    started: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    skipped: list[SkippedRouteOut] = field(default_factory=list)

    def trying(self, route: Route) -> None:
        """The call is now at ``route``: what its ``tool_call`` line and metrics will name."""
        if self.record is not None:
            self.record.routed(route.provider, route.model)
            self.record.fallbacks = len(self.skipped)


class _RoutePlan:
    """The primary route, then its fallbacks, worked out only once the primary cannot serve.

    Most calls never need a fallback, and listing them walks every provider's models.
    Iterate it; ``more()`` says whether a route follows the current one.
    """

    def __init__(self, fallbacks: Callable[[], list[Route]], primary: Route) -> None:
        self._fallbacks: Callable[[], list[Route]] | None = fallbacks
        self._routes = [primary]
        self._index = -1

    def __iter__(self) -> Iterator[Route]:
        while self._index + 1 < len(self._routes):
            self._index += 1
            yield self._routes[self._index]

    def more(self) -> bool:
        if self._fallbacks is not None:
            self._routes.extend(self._fallbacks())
            self._fallbacks = None
        return self._index + 1 < len(self._routes)


class GatewayService:
    def __init__(
        self, providers: ProvidersFile, broker: Broker, max_inflight: int = 1024,
        metrics: GatewayMetrics | None = None, store: StoreSlot | None = None,
        store_settings: StoreSettings | None = None, ledger: LedgerWriter | None = None,
    ) -> None:
        self.providers = providers
        # Tasks and threads live here; stateless calls never touch it (gateway.store).
        self.store = store if store is not None else StoreSlot(None, "no store was opened")
        self.threads = ThreadKeeper(self.store, ThreadLimits.of(store_settings or StoreSettings()))
        self.broker = broker
        self.metrics = metrics
        # The usage ledger and the budgets it feeds (gateway.ledger, gateway.budgets); None: neither.
        self.ledger = ledger
        self.features = ModelFeatures(providers, lambda p: broker.worker(p).models)
        self.prices = PriceBook(providers)
        self.router = Router(providers, self._live_models, lambda p: broker.worker(p).up,
                             lambda p, c: broker.worker(p).unloaded_ids(c),
                             unreachable=lambda p: broker.worker(p).unreachable(), features=self.features.of)
        self.started = time.monotonic()
        self.max_inflight = max_inflight
        self.inflight = 0

    def _live_models(self, provider: str, capability: Capability) -> list[str]:
        return self.broker.worker(provider).model_ids(capability)

    # ----------------------------------------------------------------- tools

    async def chat(
        self, args: ChatInput, client: ClientEntry | None, progress: ProgressFn | None = None,
        trace: TraceContext | None = None, record: CallRecord | None = None,
    ) -> ChatOutput:
        capability: Capability = "chatStream" if progress is not None else "chat"
        if not args.plain:
            return await self._chat_beyond_text(args, client, progress, trace, record)
        primary = self.router.route(capability, args.provider, args.model, client)
        self._temperature(args, primary)  # refused before any paid request
        op = Op.CHAT_STREAM if progress is not None else Op.CHAT
        attempt = self._attempt(primary, args.timeout_s, trace, record)

        def payload(route: Route) -> dict[str, Any]:
            return ChatRequest(model=route.model, messages=plain_messages(args), max_tokens=args.max_tokens,
                               temperature=self._temperature(args, route), stream=progress is not None,
                               traceparent=trace.traceparent if trace else None).to_wire()

        def fits(route: Route) -> str | None:
            return self.features.temperature_fits(args.temperature, args.drop_unsupported, route.provider,
                                                  route.model)

        started = time.perf_counter()
        route, reply = await self._run(capability, op, primary, client, attempt, payload, progress, fits)
        output = self._chat_output(op, route, reply, attempt, started, progress)
        if self._temperature_dropped(args, route):
            output.dropped = ["temperature"]
        return output

    def _temperature(self, args: ChatInput, route: Route) -> float | None:
        """The call's temperature for ``route``'s model (``ModelFeatures.temperature``)."""
        return self.features.temperature(args.temperature, args.drop_unsupported, route.provider, route.model)

    def _temperature_dropped(self, args: ChatInput, route: Route) -> bool:
        """Whether the call's temperature was left out for ``route``'s model (drop_unsupported)."""
        return args.temperature is not None and self._temperature(args, route) is None

    async def _chat_beyond_text(
        self, args: ChatInput, client: ClientEntry | None, progress: ProgressFn | None,
        trace: TraceContext | None, record: CallRecord | None,
    ) -> ChatOutput:
        """A call with parts, tools, a format, reasoning, sampling or a thread: routed by the features
        it needs and refused as unsupported before any paid request when its model lacks one."""
        if args.thread is not None or args.thread_id is not None:
            return await self.threads.turn(args, record.client if record is not None else None,
                                           lambda call: self._chat_call(args, call, client, progress, trace, record))
        return await self._chat_call(args, ChatCall.build(args), client, progress, trace, record)

    async def _chat_call(
        self, args: ChatInput, call: ChatCall, client: ClientEntry | None, progress: ProgressFn | None,
        trace: TraceContext | None, record: CallRecord | None,
    ) -> ChatOutput:
        """Route and run ``call`` (built from ``args``, with a thread's history when it has one)."""
        capability: Capability = "chatStream" if progress is not None else "chat"
        primary = self.router.route(capability, args.provider, args.model, client, call.needs)
        drops: dict[tuple[str, str], list[SamplingParam]] = {
            (primary.provider, primary.model): self.features.check(call, primary.provider, primary.model)}
        self._temperature(args, primary)  # refused before any paid request
        op = Op.CHAT_STREAM if progress is not None else Op.CHAT
        attempt = self._attempt(primary, args.timeout_s, trace, record)

        fitted: dict[tuple[str, str], tuple[Reasoning | None, str | None]] = {}

        def payload(route: Route) -> dict[str, Any]:
            key = (route.provider, route.model)
            if key not in drops:  # a fallback: what its kind or model does not take
                drops[key] = self.features.check(call, route.provider, route.model)
            drop = drops[key]
            if key not in fitted:  # the thinking budget, in the range this model takes
                fitted[key] = self.features.fit_reasoning(call, route.provider, route.model)
            return call.request(route.model, args.max_tokens, self._temperature(args, route), progress is not None,
                                trace.traceparent if trace else None, drop, fitted[key][0]).to_wire()

        def fits(route: Route) -> str | None:
            return self.features.why_not(call, route.provider, route.model) or self.features.temperature_fits(
                args.temperature, args.drop_unsupported, route.provider, route.model)

        started = time.perf_counter()
        route, reply = await self._run(capability, op, primary, client, attempt, payload, progress, fits)
        output = self._chat_output(op, route, reply, attempt, started, progress, call.response_format)
        if call.drop_unsupported:
            output.dropped = list(drops.get((route.provider, route.model), []))
            if self._temperature_dropped(args, route):
                output.dropped.append("temperature")
        if note := fitted.get((route.provider, route.model), (None, None))[1]:
            output.adjusted = [note]
        return output

    def _chat_output(self, op: Op, route: Route, reply: dict[str, Any], attempt: _Attempt, started: float,
                     progress: ProgressFn | None, response_format: ResponseFormat | None = None) -> ChatOutput:
        """The result; with ``response_format`` the reply is parsed and checked (``invalid_output`` if it fails)."""
        latency = (time.perf_counter() - started) * 1000
        self._log_call(op.value, route, attempt, latency)
        try:
            output = chat_output(reply, route, attempt.request_id, latency,
                                 len(attempt.parts) if progress is not None else None, response_format)
        except errors.LLMCallerError as exc:
            exc.provider, exc.request_id = route.provider, attempt.request_id
            raise
        output.route.fallback_from = attempt.skipped
        return output

    def list_models(self, args: ListModelsInput, client: ClientEntry | None) -> ListModelsOutput:
        """The models ``client`` may use, with what each can do (``gateway.model_catalog``)."""
        return ListModelsOutput(models=list_models(
            self.providers, lambda name: self.broker.worker(name).models, args, client))

    async def embed(
        self, args: EmbedInput, client: ClientEntry | None, trace: TraceContext | None = None,
        record: CallRecord | None = None,
    ) -> EmbedOutput:
        primary = self.router.route("embed", args.provider, args.model, client)
        attempt = self._attempt(primary, args.timeout_s, trace, record)

        def payload(route: Route) -> dict[str, Any]:
            return EmbedRequest(model=route.model, inputs=args.texts,
                                traceparent=trace.traceparent if trace else None).to_wire()

        started = time.perf_counter()
        route, reply = await self._run("embed", Op.EMBED, primary, client, attempt, payload, None)
        latency = (time.perf_counter() - started) * 1000
        self._log_call("embed", route, attempt, latency)
        output = embed_output(reply, route, attempt.request_id, latency)
        output.route.fallback_from = attempt.skipped
        return output

    # ----------------------------------------------------------------- dispatch

    def _attempt(
        self, primary: Route, timeout_s: float | None, trace: TraceContext | None, record: CallRecord | None
    ) -> _Attempt:
        timeout = timeout_s or self.providers.providers[primary.provider].timeouts.total_s
        attempt = _Attempt(request_id=record.request_id if record is not None else uuid.uuid4().hex,
                           deadline=time.monotonic() + timeout, trace=trace, record=record)
        attempt.trying(primary)
        return attempt

    async def _run(
        self, capability: Capability, op: Op, primary: Route, client: ClientEntry | None,
        attempt: _Attempt, payload: Callable[[Route], dict[str, Any]], progress: ProgressFn | None,
        fits: Callable[[Route], str | None] | None = None,
    ) -> tuple[Route, dict[str, Any]]:
        """``fits``: why a fallback cannot serve the call (it is then passed over), or None if it can."""
        if self.inflight >= self.max_inflight:
            raise errors.Unavailable(f"the gateway is at its limit of {self.max_inflight} calls in flight",
                                     retry_after_s=1.0)
        self.inflight += 1
        try:
            routes = _RoutePlan(lambda: self.router.fallbacks(capability, primary, client), primary)
            last: errors.LLMCallerError | None = None
            for route in routes:
                attempt.trying(route)
                if fits is not None and route is not primary and (why := fits(route)) is not None:
                    self._skip(capability, attempt, route, why)
                    if routes.more():
                        continue
                    raise last or errors.Unavailable(f"no route can serve this call: {_describe(attempt.skipped)}")
                state = self.broker.worker(route.provider)
                if (not state.up or state.circuit_open(route.model)) and routes.more():
                    self._skip(capability, attempt, route, "circuit open" if state.up else "worker down")
                    continue
                body = payload(route)
                if self._reserve(client, route, attempt, body, op):
                    await self._hold_shared(attempt)
                try:
                    reply = await self._call_route(op, route, attempt, body, progress)
                except errors.LLMCallerError as exc:
                    if exc.usage is not None:  # a stream that broke after the provider reported some
                        self._used(attempt, route, exc.usage)
                    if attempt.parts:
                        raise _interrupted(exc, attempt.parts, route) from None
                    # Whether this failure may move to the next route is its type's policy (shared.errors).
                    if not exc.policy.fallback or time.monotonic() >= attempt.deadline or not routes.more():
                        raise
                    self._skip(capability, attempt, route, exc.type)
                    last = exc
                    continue
                self._used(attempt, route, reply.get("usage"))
                if attempt.skipped:
                    route = Route(route.provider, route.model, f"fallback after {_describe(attempt.skipped)}")
                    attempt.trying(route)
                return route, reply
            raise AssertionError("unreachable: the last route either returns or raises")
        finally:
            self.inflight -= 1

    def _reserve(self, client: ClientEntry | None, route: Route, attempt: _Attempt, body: dict[str, Any],
                 op: Op) -> bool:
        """Hold the call's estimated cost against its budgets (``BudgetExceeded`` when one is used up).

        The estimate: the request's JSON length at 3 characters a token, plus ``max_tokens`` (else
        the model's ``max_output_tokens``, else ``DEFAULT_OUTPUT_TOKENS``), priced like a reply.
        A fallback route gives back the reservation of the one before. True when the reservation
        must also be held in a store other gateways share (``_hold_shared``).
        """
        record = attempt.record
        if self.ledger is None or record is None:
            return False
        books = self.ledger.budgets
        if record.reservation is not None:
            books.release(record.reservation)
            record.reservation = None
        budget = client.budget if client is not None else None
        provider_budget = self.providers.providers[route.provider].budget
        if budget is None and provider_budget is None:
            return False
        input_tokens = estimate_input_tokens(len(orjson.dumps(
            {key: body.get(key) for key in ("messages", "inputs", "tools", "response_format")})))
        output_tokens = 0 if op is Op.EMBED else (body.get("max_tokens") or self._max_output(route)
                                                   or DEFAULT_OUTPUT_TOKENS)
        tariff = self.prices.tariff(route.provider, route.model)
        usd = None if tariff is None else call_cost(Usage(input_tokens, output_tokens), tariff)
        record.reservation = books.reserve(record.client, budget, route.provider, provider_budget, usd,
                                           input_tokens, output_tokens, time.time())
        return record.reservation is not None and self.ledger.shared

    async def _hold_shared(self, attempt: _Attempt) -> None:
        """Hold the call's reservation in the shared store (PostgreSQL): every gateway sees it at once."""
        assert self.ledger is not None and attempt.record is not None and attempt.record.reservation is not None
        record = attempt.record
        reservation = record.reservation
        assert reservation is not None
        # A hold outlives its call only if this gateway dies: it then lapses a minute after the deadline.
        expires_at = time.time() + max(attempt.deadline - time.monotonic(), 0.0) + 60.0
        try:
            await self.ledger.hold(record.request_id, reservation, expires_at)
        except errors.LLMCallerError:
            record.reservation = None
            raise

    def _max_output(self, route: Route) -> int | None:
        found = next((m for m in self.providers.providers[route.provider].models if m.id == route.model), None)
        return found.max_output_tokens if found is not None else None

    def _used(self, attempt: _Attempt, route: Route, usage: Any) -> None:
        """Put the provider's reported usage and its cost on the call's record (its log line and metrics)."""
        if attempt.record is None:
            return
        counts = Usage.from_wire(usage if isinstance(usage, dict) else None)
        attempt.record.used(counts, self.prices.cost(route.provider, route.model, counts))

    def _skip(self, capability: Capability, attempt: _Attempt, route: Route, reason: str) -> None:
        attempt.skipped.append(SkippedRouteOut(provider=route.provider, model=route.model, reason=reason))
        if self.metrics is not None:
            self.metrics.fallbacks.labels(capability, route.provider, reason).inc()

    async def _call_route(
        self, op: Op, route: Route, attempt: _Attempt, payload: dict[str, Any], progress: ProgressFn | None
    ) -> dict[str, Any]:
        remaining = attempt.deadline - time.monotonic()
        if remaining <= 0:
            raise errors.Timeout("the call's deadline passed before a provider could answer",
                                 provider=route.provider, request_id=attempt.request_id)
        reply: dict[str, Any] | None = None
        events = self.broker.call(route.provider, op, payload, remaining, attempt.request_id)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TextDelta):
                        attempt.parts.append(event.text)
                        if len(attempt.parts) == 1 and self.metrics is not None and progress is not None:
                            self.metrics.first_chunk.labels(route.provider).observe(
                                time.perf_counter() - attempt.started)
                        if progress is not None:
                            await progress(len(attempt.parts), event.text)
                    else:
                        reply = event
        except errors.LLMCallerError as exc:
            exc.request_id = exc.request_id or attempt.request_id
            exc.provider = exc.provider or route.provider
            raise
        if reply is None:
            raise errors.InternalError("the worker ended the call without a result")
        return reply

    # ----------------------------------------------------------------- metrics

    def metric_labels(self, provider: str | None, model: str | None) -> tuple[str, str]:
        """``(provider, model)`` as metric labels, from bounded sets only.

        A provider is labelled only if configured; a model only if configured, an alias
        target, or reported by the worker (discovery), else ``other``: a caller naming a
        model the router could not check must not mint a new series.
        """
        if not provider or provider not in self.providers.providers:
            return "", ""
        if not model:
            return provider, ""
        known = (any(m.id == model for m in self.providers.providers[provider].models)
                 or any(m.id == model for m in self.broker.worker(provider).models)
                 or any(a.provider == provider and a.model == model for a in self.providers.aliases.values()))
        return provider, model if known else "other"

    # ----------------------------------------------------------------- health

    async def refresh_models(self) -> None:
        """Have each discovering worker list its models now; failures leave the last known list."""
        for name, config in self.providers.providers.items():
            state = self.broker.worker(name)
            if not KINDS[config.kind].discovers_models or not config.discover_models or not state.up:
                continue
            try:
                events = self.broker.call(name, Op.MODELS, {}, 5.0)
                async with contextlib.aclosing(events):
                    async for event in events:
                        if isinstance(event, dict):
                            state.models = [ModelInfo.from_wire(m) for m in event.get("models", [])]
            except errors.LLMCallerError as exc:
                log_event(log, "model_refresh_failed", level=logging.WARNING, provider=name, error=exc.type)

    def health(self) -> HealthOutput:
        workers = [self._worker_health(name, config.kind) for name, config in self.providers.providers.items()]
        ready = [w for w in workers if w.up and w.status == "ready"]
        status: Literal["ok", "degraded", "down"] = (
            "ok" if len(ready) == len(workers) else ("degraded" if ready else "down")
        )
        known = [(name, model.id) for name, config in self.providers.providers.items() for model in config.models]
        known += [(w.provider, m.id) for w in workers for m in w.models]
        store = self.store.cached  # kept fresh in the background: getHealth never waits on the store
        return HealthOutput(
            status=status, version=VERSION, uptime_s=round(time.monotonic() - self.started, 3), workers=workers,
            store=StoreHealthOut(backend=store.backend, ok=store.ok, detail=store.detail),
            unpriced_models=self.prices.unpriced(known),
        )

    def client_usage(self, name: str | None, client: ClientEntry | None) -> ClientUsageOut | None:
        """The calling client's own usage and budgets for getHealth; None without a client or a ledger."""
        if name is None or self.ledger is None or not self.ledger.budgets.ready:
            return None
        standing = self.ledger.budgets.standing(name, client.budget if client is not None else None, time.time())
        return ClientUsageOut(
            client=name, usd_today=round(standing.usd_today, 12), tokens_today=standing.tokens_today,
            usd_this_month=round(standing.usd_this_month, 12),
            budgets=[BudgetLeftOut(budget=b, limit=limit, used=round(used, 12), left=round(left, 12), resets=resets)
                     for b, limit, used, left, resets in standing.budgets])

    def _worker_health(self, name: str, kind: str) -> WorkerHealthOut:
        state = self.broker.worker(name)
        age = state.heartbeat_age(self.broker.now())
        return WorkerHealthOut(
            provider=name,
            kind=kind,
            up=state.up,
            status=state.status,
            reason=state.reason,
            degraded_since=state.degraded_since,
            heartbeat_age_s=round(age, 3) if age is not None else None,
            capabilities=state.capabilities,
            models=health_models(self.providers.providers[name], state.models),
            last_error=state.last_error,
            inflight=len(state.inflight),
            restarts_seen=state.restarts_seen,
            circuit=state.circuit,
            counters=dict(state.counter_totals.totals),  # like /metrics: a worker restart does not reset them
        )

    def _log_call(self, tool: str, route: Route, attempt: _Attempt, latency_ms: float) -> None:
        log_event(
            log, "call_routed", level=logging.DEBUG, tool=tool, provider=route.provider, model=route.model,
            request_id=attempt.request_id, latency_ms=round(latency_ms, 3), outcome="ok",
            fallbacks=len(attempt.skipped) or None, trace_id=attempt.trace.trace_id if attempt.trace else None,
        )


def _describe(skipped: list[SkippedRouteOut]) -> str:
    return ", ".join(f"{s.provider}/{s.model} ({s.reason})" for s in skipped)


def _interrupted(exc: errors.LLMCallerError, parts: list[str], route: Route) -> errors.LLMCallerError:
    """After the first chunk nothing may be switched or repeated silently: say what was sent."""
    if isinstance(exc, errors.StreamInterrupted):
        exc.partial_text = "".join(parts)
        return exc
    interrupted = errors.StreamInterrupted(
        f"the stream from {route.provider} broke after {len(parts)} chunks ({exc.type}: {exc.message})",
        provider=route.provider,
        request_id=exc.request_id,
        retry_after_s=exc.retry_after_s,
        partial_text="".join(parts),
    )
    interrupted.usage = exc.usage
    interrupted.cause = exc.type
    return interrupted

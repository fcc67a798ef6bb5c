"""One provider call with everything around it: circuit check, rate limit, retries, guards.

Order per attempt: the circuit (fail fast if the provider is known bad), then the rate
limiter (bounded wait), then the adapter. A failure is recorded against the circuit and
may be retried by the planner's rules; a stream is retried only while nothing has been
forwarded yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, EmbedRequest, EmbedResult, ModelInfo, TextDelta
from workers.providers.base import ProviderAdapter
from workers.resilience.call_counters import CallCounters
from workers.resilience.circuit import Circuits
from workers.resilience.guards import guarded
from workers.resilience.ratelimit import ProviderLimiter, estimate_tokens
from workers.resilience.reachability import Reachability
from workers.resilience.retry import RetryPlanner

__all__ = ["ResilientCaller"]

T = TypeVar("T")


class ResilientCaller:
    def __init__(
        self, name: str, config: ProviderConfig, adapter: ProviderAdapter,
        clock: Callable[[], float] = time.monotonic, on_reachability: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.adapter = adapter
        self.retry = RetryPlanner(name, config.retry, clock=clock)
        self.limiter = ProviderLimiter(name, config.rate_limits, clock)
        self.circuits = Circuits(name, config.circuit, clock)
        self._on_reachability = on_reachability
        self.reach = Reachability(name, config.base_url, threshold=config.circuit.unreachable_after,
                                  probe_interval_s=config.circuit.probe_interval_s, on_change=self._reach_changed)
        self.stats = CallCounters()
        adapter.on_response = self.limiter.observe

    async def chat(self, request: ChatRequest, deadline: float) -> ChatResult:
        tokens = estimate_tokens(sum(len(m.content) for m in request.messages), request.max_tokens)
        return await self._call(request.model, tokens, deadline, lambda: self.adapter.chat(request))

    async def embed(self, request: EmbedRequest, deadline: float) -> EmbedResult:
        tokens = estimate_tokens(sum(len(t) for t in request.inputs), 0)
        return await self._call(request.model, tokens, deadline, lambda: self.adapter.embed(request))

    async def stream_chat(
        self, request: ChatRequest, deadline: float
    ) -> AsyncGenerator[TextDelta | ChatResult, None]:
        tokens = estimate_tokens(sum(len(m.content) for m in request.messages), request.max_tokens)
        attempt = 0
        while True:
            attempt += 1
            await self._admit(request.model, tokens, deadline, first=attempt == 1)
            forwarded = False
            stream = guarded(self.adapter.stream_chat(request), self.config.stream_guards, self.name)
            try:
                async with contextlib.aclosing(stream):
                    async for item in stream:
                        forwarded = forwarded or isinstance(item, TextDelta)
                        yield item
            except errors.LLMCallerError as caught:
                # Whatever an adapter called it, a stream that sent no text was not interrupted.
                error = caught if forwarded else _before_first_chunk(caught)
                # Once a chunk went out, the caller holds part of this answer: no retry.
                delay = self._after_failure(request.model, error, attempt, deadline, retry=not forwarded)
                if delay is None:
                    if error is caught:
                        raise
                    raise error from None
                await self._back_off(delay)
                continue
            except BaseException:
                self._abandon(request.model)
                raise
            self._record(request.model, None)
            return

    async def _call(self, model: str, tokens: int, deadline: float, run: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            await self._admit(model, tokens, deadline, first=attempt == 1)
            try:
                result = await run()
            except errors.LLMCallerError as error:
                delay = self._after_failure(model, error, attempt, deadline)
                if delay is None:
                    raise
                await self._back_off(delay)
                continue
            except BaseException:
                self._abandon(model)
                raise
            self._record(model, None)
            return result

    def _after_failure(
        self, model: str, error: errors.LLMCallerError, attempt: int, deadline: float, *, retry: bool = True
    ) -> float | None:
        """Record a failed attempt; the wait before its retry, or None when the call gives up."""
        self.stats.failed_attempts += 1
        self._record(model, error)
        delay = self.retry.delay_for(error, attempt, deadline) if retry else None
        if delay is None:
            self.stats.gave_up += 1
        return delay

    async def _back_off(self, delay: float) -> None:
        """Wait before a retry; cancelled meanwhile, that retry never goes out."""
        try:
            await asyncio.sleep(delay)
        except BaseException:
            self.stats.retry_dropped += 1
            self.stats.cancelled += 1
            raise

    def _abandon(self, model: str) -> None:
        """The call was cancelled while at the provider: neither success nor failure."""
        self.stats.cancelled += 1
        self.circuits.release(model)

    def _record(self, model: str, error: errors.LLMCallerError | None) -> None:
        self.circuits.record(model, error)
        self.reach.observe(error)

    async def list_models(self) -> list[ModelInfo]:
        """The provider's model listing (free): also a probe of whether it can be reached.

        Any HTTP answer, even an error, proves the server is there; only a failed
        connection counts towards "unreachable".
        """
        self.stats.probes += 1
        try:
            models = await self.adapter.list_models()
        except errors.ConnectionFailed as error:
            self.stats.failed_probes += 1
            self.reach.connection_failed(error)
            raise
        except errors.Timeout:
            self.stats.failed_probes += 1
            raise  # says nothing either way (see workers.resilience.reachability)
        except errors.LLMCallerError:
            self.stats.failed_probes += 1
            self.reach.answered()
            raise
        self.reach.answered()
        return models

    def _reach_changed(self) -> None:
        if self.reach.down:
            self.circuits.whole.hold(self.reach.message(), self.reach.probe_interval_s)
        else:
            self.circuits.whole.release_hold()
        if self._on_reachability is not None:
            self._on_reachability()

    async def _admit(self, model: str, tokens: int, deadline: float, *, first: bool) -> None:
        """Let one attempt go to the provider, or raise (circuit open, rate limit, cancelled)."""
        try:
            self.circuits.check(model)
        except BaseException as exc:
            self._not_admitted(exc, retry=not first)
            raise
        if first:
            self.retry.budget.record_attempt()
        try:
            await self.limiter.acquire(tokens, deadline)
        except BaseException as exc:
            self.circuits.release(model)
            self._not_admitted(exc, retry=not first)
            raise
        self.stats.sent(first=first)

    def _not_admitted(self, exc: BaseException, *, retry: bool) -> None:
        """The call ends before this attempt went out; if it was a retry, that retry is dropped."""
        if isinstance(exc, errors.LLMCallerError):
            self.stats.refused += 1
        else:
            self.stats.cancelled += 1
        if retry:
            self.stats.retry_dropped += 1

    def counters(self) -> dict[str, int]:
        """The resilience counters the worker's health reports (they only ever grow)."""
        return {
            **self.stats.as_dict(),
            "retry_budget_granted": self.retry.budget.granted,
            "retry_budget_refusals": self.retry.budget.refused,
            "retry_hint_violations": self.retry.hint_violations,
            "rate_limit_waits": self.limiter.waits,
            "rate_limit_rejections": self.limiter.rejections,
        }


def _before_first_chunk(error: errors.LLMCallerError) -> errors.LLMCallerError:
    """``stream_interrupted`` means text reached the caller; before that it is a provider error."""
    if not isinstance(error, errors.StreamInterrupted):
        return error
    return errors.ProviderError(error.message, provider=error.provider, retry_after_s=error.retry_after_s)

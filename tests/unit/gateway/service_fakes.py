"""A four-provider configuration and helpers to run ``GatewayService`` on ``FakeBroker``.

``openai`` is the default; ``backup`` (another openai-kind provider, lower priority)
offers the same chat model; ``anthropic`` is the configured chat fallback; ``lmstudio``
serves embeddings only. No processes or sockets: each call runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from gateway.broker_base import Broker
from gateway.fake_broker import FakeBroker, FakeCall, FakeEvent
from gateway.metrics import GatewayMetrics
from gateway.service import GatewayService
from gateway.tool_schemas import ChatInput, ChatOutput, EmbedInput, EmbedOutput
from shared import errors
from shared.config import ClientEntry, ProvidersFile
from shared.models import ChatResult, EmbedResult, TextDelta

T = TypeVar("T")
Handler = Callable[[FakeCall], list[FakeEvent]]

CHAT_MODELS = [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]}]
PROVIDERS: dict[str, Any] = {
    "providers": {
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K1"}, "priority": 1,
                   "models": [*CHAT_MODELS, {"id": "text-embedding-3-small", "capabilities": ["embed"]}]},
        "backup": {"kind": "openai", "base_url": "http://127.0.0.1:4/v1", "secret": {"env": "K1"}, "priority": 5,
                   "models": CHAT_MODELS},
        "anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:2", "secret": {"env": "K2"},
                      "priority": 3, "models": [{"id": "claude-haiku-4-5", "capabilities": ["chat", "chatStream"]}]},
        "lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:3", "discover_models": False,
                     "models": [{"id": "nomic-embed", "capabilities": ["embed"]}]},
    },
    "aliases": {"fast": {"provider": "anthropic", "model": "claude-haiku-4-5"}, "house": {"provider": "backup"}},
    "defaults": {"chat": {"provider": "openai", "model": "gpt-4o-mini"}, "chatStream": {"provider": "openai"},
                 "embed": {"provider": "openai"}},
    # lmstudio has no chat model: a fallback target with nothing to serve is passed over.
    "fallbacks": {"chat": [{"provider": "lmstudio"}, {"provider": "anthropic", "model": "claude-haiku-4-5"}],
                  "chatStream": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                  "embed": [{"provider": "lmstudio", "model": "nomic-embed"}]},
}


def reply(call: FakeCall, *pieces: str) -> list[FakeEvent]:
    """What a healthy worker sends: the pieces as deltas when streaming, then the whole reply."""
    if call.op == "embed":
        return [EmbedResult([[0.5, 0.25]] * len(call.request["inputs"]), call.request["model"]).to_wire()]
    deltas: list[FakeEvent] = [TextDelta(p) for p in pieces] if call.request.get("stream") else []
    return [*deltas, ChatResult("".join(pieces), call.request["model"], "stop").to_wire()]


def answers(call: FakeCall) -> list[FakeEvent]:
    """Every provider answers, naming itself."""
    return reply(call, f"from {call.provider}")


def failing(errors_by_provider: dict[str, errors.LLMCallerError], after: tuple[str, ...] = ()) -> Handler:
    """Each named provider sends ``after`` as deltas, then fails with its error; the others answer."""
    def handler(call: FakeCall) -> list[FakeEvent]:
        error = errors_by_provider.get(call.provider)
        if error is None:
            return answers(call)
        return [*(TextDelta(p) for p in after), error]
    return handler


def providers(**changes: Any) -> ProvidersFile:
    """The configuration above with top-level sections replaced."""
    return ProvidersFile.model_validate({**PROVIDERS, **changes})


def make_service(handler: Handler, config: ProvidersFile | None = None, *,
                 metrics: bool = False) -> tuple[GatewayService, FakeBroker]:
    fake = FakeBroker(handler)
    broker: Broker = fake  # the fake honours the seam the real broker honours
    svc = GatewayService(config or providers(), broker)
    if metrics:
        # GatewayMetrics reads only now() and workers() from its broker, which the fake has.
        svc.metrics = GatewayMetrics(fake, lambda: svc.inflight)  # type: ignore[arg-type]
    return svc, fake


def client(**grants: Any) -> ClientEntry:
    """A registered client with these grants (providers, models, allow_override)."""
    return ClientEntry.model_validate({"token_sha256": hashlib.sha256(b"t").hexdigest(), **grants})


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def chat(svc: GatewayService, who: ClientEntry | None = None, /, **args: Any) -> ChatOutput:
    """One plain chat call with ``args`` (prompt "hi" unless given)."""
    return run(svc.chat(ChatInput.model_validate({"prompt": "hi", **args}), who))


def stream(svc: GatewayService, **args: Any) -> tuple[ChatOutput, list[tuple[int, str]]]:
    """One chatStream call; returns the output and each progress report ``(count, text)``."""
    seen: list[tuple[int, str]] = []

    async def progress(count: int, text: str) -> None:
        seen.append((count, text))

    output = run(svc.chat(ChatInput.model_validate({"prompt": "hi", **args}), None, progress))
    return output, seen


def embed(svc: GatewayService, who: ClientEntry | None = None, /, **args: Any) -> EmbedOutput:
    return run(svc.embed(EmbedInput.model_validate({"input": ["a"], **args}), who))


def skipped(output: ChatOutput | EmbedOutput) -> list[tuple[str, str, str]]:
    """The routes passed over, as (provider, model, reason)."""
    return [(s.provider, s.model, s.reason) for s in output.route.fallback_from]

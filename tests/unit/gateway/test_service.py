"""GatewayService's routing, fallback and stream-interruption logic, in-process on a fake broker.

No supervisord, workers or sockets: ``gateway.fake_broker.FakeBroker`` answers each call
from a plain function, so each case runs in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.broker_base import Broker
from gateway.fake_broker import FakeBroker, FakeCall, FakeEvent
from gateway.service import GatewayService
from gateway.tool_schemas import ChatInput, EmbedInput
from shared import errors
from shared.config import ProvidersFile
from shared.messages import Health
from shared.models import ChatResult, EmbedResult, TextDelta

PROVIDERS = {
    "providers": {
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K1"},
                   "models": [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]},
                              {"id": "text-embedding-3-small", "capabilities": ["embed"]}]},
        "anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:2", "secret": {"env": "K2"},
                      "models": [{"id": "claude-haiku-4-5", "capabilities": ["chat", "chatStream"]}]},
        "lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:3", "discover_models": False,
                     "models": [{"id": "nomic-embed", "capabilities": ["embed"]}]},
    },
    "defaults": {"chat": {"provider": "openai", "model": "gpt-4o-mini"},
                 "chatStream": {"provider": "openai", "model": "gpt-4o-mini"},
                 "embed": {"provider": "openai", "model": "text-embedding-3-small"}},
    "fallbacks": {"chat": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                  "chatStream": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                  "embed": [{"provider": "lmstudio", "model": "nomic-embed"}]},
}
Handler = Callable[[FakeCall], list[FakeEvent]]


def reply(call: FakeCall, *pieces: str) -> list[FakeEvent]:
    """What a healthy worker sends: the pieces as deltas, then the whole reply."""
    if call.op == "embed":
        return [EmbedResult([[0.5, 0.25]] * len(call.request["inputs"]), call.request["model"]).to_wire()]
    deltas: list[FakeEvent] = [TextDelta(p) for p in pieces] if call.request.get("stream") else []
    return [*deltas, ChatResult("".join(pieces), call.request["model"], "stop").to_wire()]


def failing(provider: str, error: errors.LLMCallerError, after: tuple[str, ...] = ()) -> Handler:
    """``provider`` sends ``after`` as deltas and then fails with ``error``; the others answer."""
    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.provider == provider:
            return [*(TextDelta(p) for p in after), error]
        return reply(call, "fine ", "answer")
    return handler


def service(handler: Handler, **kw: Any) -> tuple[GatewayService, FakeBroker]:
    fake = FakeBroker(handler)
    broker: Broker = fake  # the fake honours the seam the real broker honours
    return GatewayService(ProvidersFile.model_validate(PROVIDERS), broker, **kw), fake


def chat(svc: GatewayService, stream: bool = False, **args: Any) -> tuple[Any, list[str]]:
    """Run one chat (streamed when ``stream``); returns the output and the progress texts seen."""
    seen: list[str] = []

    async def progress(count: int, text: str) -> None:
        seen.append(text)

    call = svc.chat(ChatInput.model_validate({"prompt": "hi", **args}), None, progress if stream else None)
    return asyncio.run(call), seen


def test_a_healthy_primary_answers_without_fallback() -> None:
    svc, fake = service(lambda call: reply(call, "hello"))
    output, _ = chat(svc)
    assert (output.provider, output.model, output.text) == ("openai", "gpt-4o-mini", "hello")
    assert output.route.fallback_from == [] and "default" in output.route.reason
    assert [(c.provider, c.op) for c in fake.calls] == [("openai", "chat")]


@pytest.mark.parametrize(("prepare", "reason"), [
    (lambda fake: setattr(fake.worker("openai"), "up", False), "worker down"),
    (lambda fake: setattr(fake.worker("openai"), "circuit", {"state": "open"}), "circuit open"),
    (lambda fake: setattr(fake.worker("openai"), "circuit", {"models": {"gpt-4o-mini": "open"}}), "circuit open"),
])
def test_a_route_that_cannot_serve_is_skipped_without_a_call(prepare: Callable[[FakeBroker], None],
                                                             reason: str) -> None:
    svc, fake = service(lambda call: reply(call, "from the fallback"))
    prepare(fake)
    output, _ = chat(svc)
    assert (output.provider, output.model) == ("anthropic", "claude-haiku-4-5")
    assert [(s.provider, s.model, s.reason) for s in output.route.fallback_from] == [
        ("openai", "gpt-4o-mini", reason)]
    assert output.route.reason == f"fallback after openai/gpt-4o-mini ({reason})"
    assert [c.provider for c in fake.calls] == ["anthropic"]


@pytest.mark.parametrize("error", [
    errors.ProviderError("HTTP 500"), errors.Overloaded("busy"), errors.RateLimited("slow down"),
    errors.ConnectionFailed("refused"), errors.Unavailable("restarting"),
])
def test_a_retryable_failure_before_any_chunk_falls_back(error: errors.LLMCallerError) -> None:
    svc, fake = service(failing("openai", error))
    output, _ = chat(svc)
    assert output.provider == "anthropic" and output.text == "fine answer"
    assert [s.reason for s in output.route.fallback_from] == [error.type]
    assert [c.provider for c in fake.calls] == ["openai", "anthropic"]
    assert fake.calls[0].request_id == fake.calls[1].request_id == output.request_id


@pytest.mark.parametrize("error", [
    errors.WorkerLost("the worker died mid-call"), errors.Timeout("too slow"), errors.InvalidRequest("bad"),
])
def test_a_failure_that_may_have_cost_or_cannot_help_is_not_retried_elsewhere(error: errors.LLMCallerError) -> None:
    svc, fake = service(failing("openai", error))
    with pytest.raises(type(error)) as caught:
        chat(svc)
    assert caught.value.provider == "openai" and caught.value.request_id == fake.calls[0].request_id
    assert [c.provider for c in fake.calls] == ["openai"]


def test_the_last_route_failing_raises_its_error() -> None:
    def handler(call: FakeCall) -> list[FakeEvent]:
        return [errors.ProviderError(f"{call.provider} is down too")]

    svc, fake = service(handler)
    with pytest.raises(errors.ProviderError, match="anthropic is down too") as caught:
        chat(svc)
    assert caught.value.provider == "anthropic"
    assert [c.provider for c in fake.calls] == ["openai", "anthropic"]


def test_a_call_naming_provider_and_model_is_never_switched() -> None:
    svc, fake = service(failing("openai", errors.ProviderError("HTTP 502")))
    with pytest.raises(errors.ProviderError):
        chat(svc, provider="openai", model="gpt-4o-mini")
    assert [c.provider for c in fake.calls] == ["openai"]


def test_a_stream_that_breaks_after_a_chunk_ends_interrupted_with_its_text() -> None:
    svc, fake = service(failing("openai", errors.ProviderError("connection reset"), after=("Once ", "upon")))
    with pytest.raises(errors.StreamInterrupted) as caught:
        chat(svc, stream=True)
    exc = caught.value
    assert exc.partial_text == "Once upon" and exc.provider == "openai"
    assert "after 2 chunks (provider_error: connection reset)" in exc.message
    assert [c.provider for c in fake.calls] == ["openai"], "no switch after the first chunk"


def test_an_interruption_reported_by_the_worker_keeps_its_message_and_gets_the_text() -> None:
    svc, _ = service(failing("openai", errors.StreamInterrupted("the provider stopped"), after=("par", "tial")))
    with pytest.raises(errors.StreamInterrupted, match="the provider stopped") as caught:
        chat(svc, stream=True)
    assert caught.value.partial_text == "partial"


def test_a_stream_falls_back_before_its_first_chunk_and_reports_each_delta() -> None:
    svc, fake = service(failing("openai", errors.Overloaded("busy")))
    output, seen = chat(svc, stream=True)
    assert seen == ["fine ", "answer"] and output.chunks == 2 and output.text == "fine answer"
    assert output.provider == "anthropic"
    assert [c.op for c in fake.calls] == ["chat_stream", "chat_stream"]


def test_a_caller_going_away_mid_stream_closes_the_worker_call() -> None:
    svc, fake = service(lambda call: reply(call, "a", "b", "c"))

    async def scenario() -> None:
        async def progress(count: int, text: str) -> None:
            raise asyncio.CancelledError  # what the SDK raises when the client cancels

        with pytest.raises(asyncio.CancelledError):
            await svc.chat(ChatInput(prompt="hi"), None, progress)

    asyncio.run(scenario())
    assert fake.closed == [fake.calls[0].request_id]
    assert svc.inflight == 0


def test_embed_falls_back_like_chat() -> None:
    svc, fake = service(failing("openai", errors.ConnectionFailed("refused")))
    output = asyncio.run(svc.embed(EmbedInput(input=["a", "b"]), None))
    assert (output.provider, output.model, output.dimensions, len(output.vectors)) == ("lmstudio", "nomic-embed", 2, 2)
    assert [(c.provider, c.op) for c in fake.calls] == [("openai", "embed"), ("lmstudio", "embed")]


def test_the_gateway_refuses_calls_beyond_its_inflight_limit() -> None:
    svc, fake = service(lambda call: reply(call, "x"), max_inflight=0)
    with pytest.raises(errors.Unavailable, match="limit of 0 calls"):
        chat(svc)
    assert fake.calls == []


def test_health_counters_are_totals_across_a_worker_restart() -> None:
    """getHealth's counters, like /metrics, do not fall back to zero when the worker restarts:
    an operator (or the soak's tally) comparing them with the provider's own count would see
    the calls served before the restart go missing."""
    svc, fake = service(lambda call: reply(call, "x"))
    state = fake.worker("openai")
    state.incarnation = "first"
    state.apply_health(Health(status="ready", counters={"attempts": 40, "retries": 4}), fake.now())
    state.incarnation = "second"  # the worker was restarted and counts from zero again
    state.apply_health(Health(status="ready", counters={"attempts": 3, "retries": 0}), fake.now())
    openai = next(w for w in svc.health().workers if w.provider == "openai")
    assert openai.counters == {"attempts": 43, "retries": 4}

"""Which failures move a call to the next route, in what order, and which routes are passed over.

Fast twins of tests/integration/test_resilience.py's fallback cases: the decisions live in
``gateway.service`` and ``gateway.router``, so they are checked here on ``FakeBroker``.
"""

from __future__ import annotations

import types

import pytest

from gateway.call_record import CallRecord
from gateway.fake_broker import FakeCall, FakeEvent
from gateway.tool_schemas import ChatInput
from shared import errors
from shared.models import Capability
from tests.unit.gateway.service_fakes import (
    answers,
    chat,
    client,
    embed,
    failing,
    make_service,
    providers,
    run,
    skipped,
)

ERROR_CLASSES = [errors.error_class(name) for name in errors.ERROR_TYPES]


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=errors.ERROR_TYPES)
def test_a_failure_before_any_output_falls_back_exactly_when_its_policy_says(
        error_class: type[errors.LLMCallerError]) -> None:
    svc, fake = make_service(failing({"openai": error_class("it failed")}))
    if error_class.policy.fallback:
        output = chat(svc)
        assert output.provider == "anthropic" and output.text == "from anthropic"
        assert skipped(output) == [("openai", "gpt-4o-mini", error_class.type)]
        assert [c.provider for c in fake.calls] == ["openai", "anthropic"]
    else:
        with pytest.raises(error_class) as caught:
            chat(svc)
        assert caught.value.provider == "openai" and caught.value.request_id == fake.calls[0].request_id
        assert [c.provider for c in fake.calls] == ["openai"]


def test_routes_are_tried_configured_fallbacks_first_then_other_providers_of_the_model_by_priority() -> None:
    def handler(call: FakeCall) -> list[FakeEvent]:
        return [errors.Overloaded(f"{call.provider} is busy")]

    svc, fake = make_service(handler)
    with pytest.raises(errors.Overloaded, match="backup is busy"):
        chat(svc)
    # lmstudio (a configured chat fallback) has no chat model: passed over without a call.
    assert [(c.provider, c.request["model"]) for c in fake.calls] == [
        ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("backup", "gpt-4o-mini")]
    assert len({c.request_id for c in fake.calls}) == 1, "one request id across every route"


def test_the_result_lists_every_route_passed_over_in_order() -> None:
    svc, fake = make_service(failing({"openai": errors.ProviderError("HTTP 500")}))
    fake.worker("anthropic").circuit = {"state": "open"}
    output = chat(svc)
    assert output.provider == "backup"
    assert skipped(output) == [("openai", "gpt-4o-mini", "provider_error"),
                               ("anthropic", "claude-haiku-4-5", "circuit open")]
    assert output.route.reason == ("fallback after openai/gpt-4o-mini (provider_error), "
                                   "anthropic/claude-haiku-4-5 (circuit open)")
    assert [c.provider for c in fake.calls] == ["openai", "backup"], "no call to an open circuit"


def test_a_down_fallback_is_passed_over_and_the_next_serves() -> None:
    svc, fake = make_service(answers)
    fake.worker("openai").mark_down()
    fake.worker("anthropic").mark_down()
    output = chat(svc)
    assert output.provider == "backup"
    assert [r for _, _, r in skipped(output)] == ["worker down", "worker down"]
    assert [c.provider for c in fake.calls] == ["backup"]


def test_the_last_route_is_tried_even_when_down_so_its_error_reaches_the_caller() -> None:
    svc, fake = make_service(answers)
    for name in ("openai", "anthropic", "backup"):
        fake.worker(name).mark_down()
    with pytest.raises(errors.Unavailable, match="the backup worker is not running") as caught:
        chat(svc)
    assert caught.value.provider == "backup"
    assert [c.provider for c in fake.calls] == ["backup"]


def test_a_model_whose_circuit_is_open_is_passed_over_while_other_models_serve() -> None:
    svc, fake = make_service(answers)
    fake.worker("openai").circuit = {"state": "closed", "models": {"gpt-4o-mini": "open"}}
    output = chat(svc)
    assert skipped(output) == [("openai", "gpt-4o-mini", "circuit open")]
    assert embed(svc).provider == "openai", "the embedding model's circuit is closed"


def test_fallback_skips_providers_and_models_the_client_may_not_use() -> None:
    svc, fake = make_service(failing({"openai": errors.Overloaded("busy")}))
    who = client(providers=["openai", "backup"], allow_override=False)
    output = chat(svc, who)
    assert output.provider == "backup" and skipped(output) == [("openai", "gpt-4o-mini", "overloaded")]
    only_mini = client(models=["gpt-4o-mini"])
    output = chat(svc, only_mini)
    assert output.provider == "backup", "claude-haiku-4-5 is not among this client's models"
    assert "anthropic" not in [c.provider for c in fake.calls]


def test_embed_fallback_skips_a_target_without_the_capability() -> None:
    config = providers(fallbacks={"embed": [{"provider": "anthropic", "model": "claude-haiku-4-5"},
                                            {"provider": "lmstudio", "model": "nomic-embed"}]})
    svc, fake = make_service(failing({"openai": errors.ConnectionFailed("refused")}), config)
    output = embed(svc, input=["a", "b"])
    assert (output.provider, output.model, len(output.vectors)) == ("lmstudio", "nomic-embed", 2)
    assert [(c.provider, c.op) for c in fake.calls] == [("openai", "embed"), ("lmstudio", "embed")]


def test_a_call_naming_its_provider_is_not_switched() -> None:
    svc, fake = make_service(failing({"openai": errors.Overloaded("busy"), "anthropic": errors.Overloaded("busy")}))
    with pytest.raises(errors.Overloaded):
        chat(svc, provider="openai")
    with pytest.raises(errors.Overloaded):
        chat(svc, model="gpt-4o-mini", provider="openai")
    assert [c.provider for c in fake.calls] == ["openai", "openai"]


def test_no_fallback_once_the_deadline_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.service.time", types.SimpleNamespace(
        monotonic=lambda: now[0], perf_counter=lambda: now[0]))

    def handler(call: FakeCall) -> list[FakeEvent]:
        now[0] += 31  # the provider took longer than the call's 30 s deadline, then said it was busy
        return [errors.Overloaded("busy")]

    svc, fake = make_service(handler)
    with pytest.raises(errors.Overloaded):
        chat(svc, timeout_s=30)
    assert [c.provider for c in fake.calls] == ["openai"]


def test_a_fallback_gets_only_what_is_left_of_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.service.time", types.SimpleNamespace(
        monotonic=lambda: now[0], perf_counter=lambda: now[0]))

    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.provider == "openai":
            now[0] += 20
            return [errors.Overloaded("busy")]
        return answers(call)

    svc, fake = make_service(handler)
    assert chat(svc, timeout_s=30).provider == "anthropic"
    assert [c.timeout_s for c in fake.calls] == [30, 10]


@pytest.mark.parametrize(("capability", "label"), [("chat", "chat"), ("embed", "embed")])
def test_each_route_passed_over_is_counted_by_tool_provider_and_reason(capability: Capability, label: str) -> None:
    svc, fake = make_service(answers, metrics=True)
    fake.worker("openai").mark_down()
    (chat if capability == "chat" else embed)(svc)
    assert svc.metrics is not None
    value = svc.metrics.registry.get_sample_value(
        "llmc_fallbacks_total", {"tool": label, "provider": "openai", "reason": "worker down"})
    assert value == 1.0


def test_the_call_record_follows_the_route_that_served_and_counts_the_fallbacks() -> None:
    svc, fake = make_service(failing({"openai": errors.RateLimited("slow down")}))
    record = CallRecord(tool="chat", trace_id="0" * 32)
    output = run(svc.chat(ChatInput(prompt="hi"), None, record=record))
    assert (record.provider, record.model, record.fallbacks) == ("anthropic", "claude-haiku-4-5", 1)
    assert output.request_id == record.request_id == fake.calls[0].request_id

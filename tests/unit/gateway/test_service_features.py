"""Calls beyond plain text (#16) on FakeBroker: the request a worker gets, features, routing by needs.

Models' features come from providers.json here (config ``features``), so the rules hold
whatever the kinds declare. A refused call never reaches a worker (``fake.calls == []``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gateway.chat_request import EFFORT_BUDGETS
from shared import errors
from shared.config import ProvidersFile
from shared.kind_spec import SamplingRule
from shared.models import ModelInfo
from tests.unit.gateway.service_fakes import (
    answers,
    chat,
    client,
    failing,
    make_service,
    providers,
    reply,
    skipped,
    stream,
)
from tests.unit.gateway.test_chat_inputs import PNG, WEATHER, b64, image, user
from workers.providers.registry import KINDS

CHAT = ["chat", "chatStream"]
ALL = ["vision", "tools", "json_schema", "reasoning"]


def featured(default: str = "gpt-4o-mini", backup_features: tuple[str, ...] | None = (),
             anthropic_model: str = "claude-haiku-4-5", **fallbacks: Any) -> ProvidersFile:
    """openai: gpt-4o-mini (no features, the default) and gpt-4o (vision, tools, schemas);
    backup: gpt-4o-mini (``backup_features``: none); anthropic: ``anthropic_model`` (all four)."""
    return providers(providers={
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K1"}, "priority": 1,
                   "models": [{"id": "gpt-4o-mini", "capabilities": CHAT, "features": []},
                              {"id": "gpt-4o", "capabilities": CHAT, "features": ["vision", "tools", "json_schema"],
                               "priority": 50}]},
        "backup": {"kind": "openai", "base_url": "http://127.0.0.1:4/v1", "secret": {"env": "K1"}, "priority": 5,
                   "models": [{"id": "gpt-4o-mini", "capabilities": CHAT, "features": _listed(backup_features)}]},
        "anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:2", "secret": {"env": "K2"}, "priority": 3,
                      "models": [{"id": anthropic_model, "capabilities": CHAT, "features": ALL}]},
    }, aliases={}, defaults={"chat": {"provider": "openai", "model": default},
                             "chatStream": {"provider": "openai", "model": "gpt-4o-mini"}},
        fallbacks=fallbacks or {"chat": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]})


def _listed(features: tuple[str, ...] | None) -> list[str] | None:
    return None if features is None else list(features)


def test_a_plain_text_chat_sends_exactly_what_it_sent_before() -> None:
    svc, fake = make_service(answers, featured())
    messages = [{"role": "system", "content": "brief"}, {"role": "user", "content": "hi"}]
    output = chat(svc, prompt=None, messages=messages, max_tokens=5)
    assert fake.calls[0].request == {
        "model": "gpt-4o-mini", "messages": [{"role": "system", "content": "brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 5, "temperature": None, "stream": False, "traceparent": None}
    assert output.dropped is None and output.route.reason == "configured default for chat"


def test_an_image_goes_to_a_model_with_vision_and_the_route_says_why() -> None:
    svc, fake = make_service(answers, featured())
    output = chat(svc, **user(image()), prompt=None)
    assert (output.provider, output.model) == ("openai", "gpt-4o")
    assert output.route.reason == ("the chat default openai/gpt-4o-mini lacks vision; "
                                   "openai/gpt-4o is the first by priority with vision")
    assert fake.calls[0].request["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image", "data": b64(PNG), "mime_type": "image/png"}]}]


def test_a_data_url_image_reaches_the_worker_as_data_and_type() -> None:
    svc, fake = make_service(answers, featured())
    chat(svc, **user({"type": "image", "url": f"data:image/png;base64,{b64(PNG)}"}), prompt=None)
    assert fake.calls[0].request["messages"][0]["content"][1] == {
        "type": "image", "data": b64(PNG), "mime_type": "image/png"}


def test_routing_by_needs_goes_past_providers_lacking_them_and_honours_the_clients_grants() -> None:
    svc, _ = make_service(answers, featured())
    output = chat(svc, reasoning={"effort": "low"})
    assert (output.provider, output.model) == ("anthropic", "claude-haiku-4-5")
    assert "lacks reasoning; anthropic/claude-haiku-4-5 is the first by priority" in output.route.reason
    with pytest.raises(errors.Unsupported, match=r"no model this client may use has reasoning \(the chat default "
                                                 r"openai/gpt-4o-mini lacks reasoning\)"):
        chat(svc, client(providers=["openai", "backup"]), reasoning={"effort": "low"})
    with pytest.raises(errors.Unsupported, match="no model this client may use has vision"):
        chat(svc, client(models=["gpt-4o-mini"]), **user(image()), prompt=None)


def test_the_default_serves_when_it_has_the_features() -> None:
    svc, _ = make_service(answers, featured(default="gpt-4o"))
    output = chat(svc, tools=[WEATHER])
    assert (output.model, output.route.reason) == ("gpt-4o", "configured default for chat")


@pytest.mark.parametrize(("args", "feature"), [
    (user(image()), "vision"),
    ({"tools": [WEATHER]}, "tools"),
    ({"response_format": {"type": "json_object"}}, "json_schema"),
    ({"reasoning": {"budget_tokens": 2000}}, "reasoning"),
])
def test_a_named_model_lacking_a_feature_is_unsupported_before_any_call(args: dict[str, Any], feature: str) -> None:
    svc, fake = make_service(answers, featured())
    call = {"prompt": "hi", **args} if "messages" not in args else {**args, "prompt": None}
    with pytest.raises(errors.Unsupported) as caught:
        chat(svc, model="gpt-4o-mini", **call)
    assert caught.value.message.startswith(f"model 'gpt-4o-mini' of openai (OpenAI) does not support {feature}")
    assert caught.value.provider == "openai" and fake.calls == []


def test_features_come_from_config_then_discovery_then_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    svc, _ = make_service(answers, featured())
    svc.broker.worker("backup").models = [ModelInfo("gpt-4o-mini", ["chat"], features=["vision"])]
    assert svc.features.of("backup", "gpt-4o-mini") == frozenset()  # config says none: config wins
    svc, _ = make_service(answers, featured(backup_features=None))
    svc.broker.worker("backup").models = [ModelInfo("gpt-4o-mini", ["chat"], features=["vision"])]
    assert svc.features.of("backup", "gpt-4o-mini") == {"vision"}  # then the server's word
    svc.broker.worker("backup").models = []
    monkeypatch.setitem(KINDS, "openai", dataclasses.replace(KINDS["openai"], features=frozenset({"tools"})))
    assert svc.features.of("backup", "gpt-4o-mini") == {"tools"}  # then the kind's


def test_a_tool_round_trip_reaches_the_worker_with_the_result_named_after_its_call() -> None:
    svc, fake = make_service(answers, featured())
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "12 C"}]
    output = chat(svc, prompt=None, messages=messages, tools=[WEATHER], tool_choice={"name": "get_weather"})
    assert output.model == "gpt-4o"
    request = fake.calls[0].request
    assert request["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"role": "tool", "content": "12 C", "tool_call_id": "call_1", "name": "get_weather"}]
    assert request["tools"] == [WEATHER]
    assert request["tool_choice"] == {"mode": "tool", "name": "get_weather"}


def test_a_schema_travels_as_the_response_format() -> None:
    # The worker answers JSON that fits: the gateway checks structured replies (invalid_output otherwise).
    svc, fake = make_service(lambda call: reply(call, '{"n": 1}'), featured())
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    chat(svc, response_format={"type": "json_schema", "schema": schema, "name": "count", "strict": False})
    assert fake.calls[0].request["response_format"] == {
        "type": "json_schema", "schema": schema, "name": "count", "strict": False}


@pytest.mark.parametrize(("given", "sent"), [
    ({"effort": "low"}, {"effort": "low", "budget_tokens": EFFORT_BUDGETS["low"]}),
    ({"effort": "high", "include_thoughts": True},
     {"effort": "high", "budget_tokens": 16384, "include_thoughts": True}),
    ({"budget_tokens": 1500}, {"effort": "low", "budget_tokens": 1500}),
    ({"budget_tokens": 4096}, {"effort": "medium", "budget_tokens": 4096}),
    ({"budget_tokens": 50000}, {"effort": "high", "budget_tokens": 50000}),
    ({"effort": "low", "budget_tokens": 9000}, {"effort": "low", "budget_tokens": 9000}),
])
def test_reasoning_always_reaches_the_worker_as_both_effort_and_budget(
        given: dict[str, Any], sent: dict[str, Any]) -> None:
    svc, fake = make_service(answers, featured())
    chat(svc, reasoning=given)
    assert fake.calls[0].request["reasoning"] == {"include_thoughts": False, **sent}


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_a_budget_outside_the_models_range_is_fitted_and_the_result_says_so(tool: str) -> None:
    svc, fake = make_service(answers, featured())
    args: dict[str, Any] = {"provider": "anthropic", "reasoning": {"budget_tokens": 100}}
    output = chat(svc, **args) if tool == "chat" else stream(svc, **args)[0]
    assert fake.calls[0].request["reasoning"] == {"effort": "low", "budget_tokens": 1024, "include_thoughts": False}
    assert output.adjusted == ["reasoning.budget_tokens 100 -> 1024 (claude-haiku-4-5 takes at least 1024)"]
    assert "adjusted" in output.structured()
    fitting = chat(svc, provider="anthropic", reasoning={"budget_tokens": 2000})
    assert fake.calls[-1].request["reasoning"]["budget_tokens"] == 2000
    assert fitting.adjusted is None and "adjusted" not in fitting.structured()


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_a_budget_given_for_a_model_with_adaptive_thinking_is_named_in_adjusted(tool: str) -> None:
    svc, fake = make_service(answers, featured(anthropic_model="claude-sonnet-4-6"))  # the shipped "smart" model
    args: dict[str, Any] = {"provider": "anthropic", "model": "claude-sonnet-4-6",
                            "reasoning": {"budget_tokens": 100}}
    output = chat(svc, **args) if tool == "chat" else stream(svc, **args)[0]
    # Not clamped to a budget range (none is sent); the worker sends the effort the budget stands for.
    assert fake.calls[0].request["reasoning"] == {"effort": "low", "budget_tokens": 100, "include_thoughts": False}
    assert output.adjusted == ["reasoning.budget_tokens 100 -> effort low "
                               "(claude-sonnet-4-6 thinks adaptively: it takes an effort, not a budget)"]
    effort_only = chat(svc, provider="anthropic", model="claude-sonnet-4-6", reasoning={"effort": "high"})
    assert effort_only.adjusted is None


def test_a_sampling_parameter_the_kind_does_not_take_is_unsupported_or_dropped() -> None:
    svc, fake = make_service(answers, featured())
    with pytest.raises(errors.Unsupported, match=r"anthropic \(Anthropic\) does not take seed; .* drop_unsupported"):
        chat(svc, provider="anthropic", seed=7)
    assert fake.calls == []
    output = chat(svc, provider="anthropic", seed=7, presence_penalty=1, drop_unsupported=True)
    assert output.dropped == ["seed", "presence_penalty"]
    assert "sampling" not in fake.calls[0].request


def test_a_sampling_parameter_the_kind_takes_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "openai", dataclasses.replace(KINDS["openai"], sampling=frozenset({"stop", "seed"})))
    svc, fake = make_service(answers, featured())
    output, _ = stream(svc, stop="END", seed=3, top_p=0.5, drop_unsupported=True)
    assert fake.calls[0].request["sampling"] == {"stop": ["END"], "seed": 3}
    assert output.dropped == ["top_p"]


def test_a_sampling_parameter_one_model_refuses_is_unsupported_or_dropped_for_that_model_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kind = dataclasses.replace(KINDS["openai"], sampling=frozenset({"stop", "presence_penalty"}),
                               sampling_rules=(SamplingRule("gpt-4o-mini", frozenset({"presence_penalty"})),))
    monkeypatch.setitem(KINDS, "openai", kind)
    svc, fake = make_service(answers, featured())
    with pytest.raises(errors.Unsupported, match=r"model 'gpt-4o-mini' of openai \(OpenAI\) does not take "
                                                 r"presence_penalty; .* drop_unsupported"):
        chat(svc, presence_penalty=0.5)
    assert fake.calls == []
    output = chat(svc, presence_penalty=0.5, stop="END", drop_unsupported=True)
    assert output.dropped == ["presence_penalty"]
    assert fake.calls[0].request["sampling"] == {"stop": ["END"]}
    chat(svc, model="gpt-4o", presence_penalty=0.5)  # its sibling takes it
    assert fake.calls[1].request["sampling"] == {"presence_penalty": 0.5}


def _with_luna(config: ProvidersFile, provider: str) -> ProvidersFile:
    """``config`` with gpt-6-luna (no features) added to ``provider``'s models."""
    data = config.model_dump(mode="json", exclude_unset=True)
    data["providers"][provider]["models"].append({"id": "gpt-6-luna", "capabilities": CHAT, "features": []})
    return ProvidersFile.model_validate(data)


def test_a_temperature_to_a_model_that_refuses_one_is_unsupported_before_the_call_or_dropped() -> None:
    # gpt-6-luna reasons by default and refuses a temperature (the openai kind's fact, not a fake's).
    svc, fake = make_service(answers, _with_luna(featured(default="gpt-6-luna"), "openai"))
    for extra in ({}, {"seed": 3}):  # a plain call, and one beyond plain text
        with pytest.raises(errors.Unsupported, match=r"model 'gpt-6-luna' of openai \(OpenAI\) does not take "
                                                     r"temperature .* drop_unsupported"):
            chat(svc, temperature=0.2, **extra)
        assert fake.calls == []
    plain = chat(svc, temperature=0.2, drop_unsupported=True)
    assert plain.dropped == ["temperature"] and fake.calls[-1].request.get("temperature") is None
    beyond = chat(svc, temperature=0.2, seed=3, drop_unsupported=True)
    assert beyond.dropped == ["temperature"] and fake.calls[-1].request.get("temperature") is None
    assert fake.calls[-1].request["sampling"] == {"seed": 3}
    chat(svc, model="gpt-4o", temperature=0.2)  # a model that takes one gets it
    assert fake.calls[-1].request["temperature"] == 0.2


def test_a_fallback_that_refuses_the_calls_temperature_is_passed_over_and_named() -> None:
    config = _with_luna(featured(chat=[{"provider": "backup", "model": "gpt-6-luna"},
                                       {"provider": "anthropic", "model": "claude-haiku-4-5"}]), "backup")
    svc, fake = make_service(failing({"openai": errors.Unavailable("down")}), config)
    output = chat(svc, temperature=0.5)
    assert output.provider == "anthropic"
    assert skipped(output) == [("openai", "gpt-4o-mini", "unavailable"),
                               ("backup", "gpt-6-luna", "does not take temperature")]
    assert [c.provider for c in fake.calls] == ["openai", "anthropic"]


def test_a_fallback_lacking_the_calls_features_is_passed_over_and_named() -> None:
    config = featured(chat=[{"provider": "backup", "model": "gpt-4o-mini"},
                            {"provider": "anthropic", "model": "claude-haiku-4-5"}])
    svc, fake = make_service(failing({"openai": errors.Unavailable("down")}), config)
    output = chat(svc, **user(image()), prompt=None)
    assert output.provider == "anthropic"
    assert skipped(output) == [("openai", "gpt-4o", "unavailable"), ("backup", "gpt-4o-mini", "lacks vision")]
    assert [c.provider for c in fake.calls] == ["openai", "anthropic"]


def test_when_every_fallback_lacks_the_features_the_first_failure_is_reported() -> None:
    config = featured(chat=[{"provider": "backup", "model": "gpt-4o-mini"}])
    svc, fake = make_service(failing({"openai": errors.Unavailable("openai is down")}), config)
    with pytest.raises(errors.Unavailable, match="openai is down"):
        chat(svc, **user(image()), prompt=None)
    assert [c.provider for c in fake.calls] == ["openai"]

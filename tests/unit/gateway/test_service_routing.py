"""How a call is routed before any worker is asked: names, aliases, defaults, capabilities, grants.

Fast twins of tests/integration/test_auth_and_input.py's routing refusals and
test_tools.py's per-provider calls. Every refusal happens without a worker call and says
what the caller can use instead.
"""

from __future__ import annotations

import pytest

from gateway.tool_schemas import ChatInput
from shared import errors
from shared.models import ModelInfo
from tests.unit.gateway.service_fakes import (
    answers,
    chat,
    client,
    embed,
    make_service,
    providers,
    run,
    stream,
)


@pytest.mark.parametrize(("args", "error", "mentions"), [
    ({"model": "gpt-99"}, errors.NotFound, "no provider offers model 'gpt-99' for chat; available: openai: gpt-4o"),
    ({"provider": "nosuch"}, errors.NotFound, "unknown provider 'nosuch'; configured: openai, backup, anthropic"),
    ({"provider": "anthropic", "model": "gpt-4o-mini"}, errors.NotFound, "available: claude-haiku-4-5"),
    ({"provider": "lmstudio"}, errors.NotFound, "lmstudio has no model configured for chat"),
])
def test_an_unknown_name_is_refused_with_what_is_available(
        args: dict[str, str], error: type[errors.LLMCallerError], mentions: str) -> None:
    svc, fake = make_service(answers)
    with pytest.raises(error) as caught:
        chat(svc, **args)
    assert mentions in caught.value.message
    assert fake.calls == []


def test_an_alias_routes_to_its_target_and_says_so() -> None:
    svc, fake = make_service(answers)
    output = chat(svc, model="fast")
    assert (output.provider, output.model, output.route.reason) == ("anthropic", "claude-haiku-4-5", "alias 'fast'")
    assert fake.calls[0].request["model"] == "claude-haiku-4-5"


def test_an_alias_without_a_model_uses_its_providers_default_for_the_capability() -> None:
    svc, _ = make_service(answers)
    output = chat(svc, model="house")
    assert (output.provider, output.model) == ("backup", "gpt-4o-mini")


def test_an_alias_is_allowed_to_a_client_that_may_not_override() -> None:
    svc, _ = make_service(answers)
    assert chat(svc, client(allow_override=False), model="fast").provider == "anthropic"
    with pytest.raises(errors.PermissionDenied, match="may not use provider 'anthropic'"):
        chat(svc, client(providers=["openai"]), model="fast")


def test_the_configured_default_serves_a_call_that_names_nothing() -> None:
    svc, _ = make_service(answers)
    output = chat(svc)
    assert (output.provider, output.model, output.route.reason) == (
        "openai", "gpt-4o-mini", "configured default for chat")
    out = embed(svc)
    assert (out.provider, out.model) == ("openai", "text-embedding-3-small"), "a default without a model"


def test_a_capability_without_a_default_asks_for_a_provider_or_model() -> None:
    svc, fake = make_service(answers, providers(defaults={}))
    with pytest.raises(errors.NotFound, match="no default is configured for chat; name a provider or model"):
        chat(svc)
    assert chat(svc, model="claude-haiku-4-5").provider == "anthropic"
    assert [c.provider for c in fake.calls] == ["anthropic"]


def test_a_model_is_routed_to_the_best_priority_provider_that_is_up() -> None:
    svc, fake = make_service(answers)
    assert chat(svc, model="gpt-4o-mini").provider == "openai"
    fake.worker("openai").mark_down()
    output = chat(svc, model="gpt-4o-mini")
    assert output.provider == "backup" and output.route.reason == "model named in the call"


def test_a_model_the_worker_discovered_is_routed_to() -> None:
    svc, fake = make_service(answers)
    fake.worker("lmstudio").models = [ModelInfo("qwen-chat", ["chat"])]
    output = chat(svc, model="qwen-chat")
    assert (output.provider, output.model) == ("lmstudio", "qwen-chat")


def test_a_model_listed_but_not_loaded_is_refused_with_how_to_load_it() -> None:
    svc, fake = make_service(answers)
    fake.worker("lmstudio").models = [ModelInfo("qwen-chat", ["chat"], loaded=False)]
    with pytest.raises(errors.Unavailable, match="known to lmstudio but not loaded"):
        chat(svc, model="qwen-chat")
    with pytest.raises(errors.Unavailable, match="not loaded; load it there"):
        chat(svc, provider="lmstudio", model="qwen-chat")
    assert fake.calls == []


@pytest.mark.parametrize(("call", "capability", "kind"), [
    (lambda svc: embed(svc, provider="anthropic"), "embed", "anthropic"),
    (lambda svc: embed(svc, model="fast"), "embed", "anthropic"),
])
def test_a_capability_the_providers_kind_lacks_is_unsupported(call, capability: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    svc, fake = make_service(answers)
    with pytest.raises(errors.Unsupported, match=f"{capability} is not supported by {kind}"):
        call(svc)
    assert fake.calls == []


def test_a_stream_names_its_capability_when_routing() -> None:
    svc, _ = make_service(answers, providers(defaults={"chat": {"provider": "openai"}}))
    with pytest.raises(errors.NotFound, match="no default is configured for chatStream"):
        stream(svc)


@pytest.mark.parametrize(("grants", "args", "mentions"), [
    ({"allow_override": False}, {"provider": "openai"}, "may not choose a provider or model"),
    ({"allow_override": False}, {"model": "gpt-4o-mini"}, "may not choose a provider or model"),
    ({"providers": ["anthropic"]}, {}, "may not use provider 'openai'"),
    ({"providers": ["anthropic"]}, {"model": "gpt-4o-mini"}, "may not use the providers offering 'gpt-4o-mini'"),
    ({"models": ["claude-haiku-4-5"]}, {}, "may not use model 'gpt-4o-mini' (allowed: claude-haiku-4-5)"),
])
def test_a_client_is_held_to_its_grants(grants: dict[str, object], args: dict[str, str], mentions: str) -> None:
    svc, fake = make_service(answers)
    with pytest.raises(errors.PermissionDenied) as caught:
        chat(svc, client(**grants), **args)
    assert mentions in caught.value.message
    assert fake.calls == []


def test_a_system_prompt_and_a_message_list_reach_the_worker_as_messages() -> None:
    svc, fake = make_service(answers)
    run(svc.chat(ChatInput(prompt="hi", system="be brief"), None))
    run(svc.chat(ChatInput.model_validate({"messages": [{"role": "user", "content": "a"},
                                                        {"role": "assistant", "content": "b"}]}), None))
    assert [[(m["role"], m["content"]) for m in c.request["messages"]] for c in fake.calls] == [
        [("system", "be brief"), ("user", "hi")], [("user", "a"), ("assistant", "b")]]


def test_a_provider_that_cannot_be_reached_says_so_instead_of_having_no_model() -> None:
    svc, fake = make_service(answers)
    lmstudio = fake.worker("lmstudio")
    lmstudio.status, lmstudio.reason = "degraded", "LM Studio is not reachable at http://127.0.0.1:3"
    with pytest.raises(errors.Unavailable, match="LM Studio is not reachable") as caught:
        chat(svc, provider="lmstudio")
    assert caught.value.provider == "lmstudio" and fake.calls == []

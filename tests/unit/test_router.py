"""Routing decisions: explicit provider, by model, by default, and every refusal."""

from __future__ import annotations

import pytest

from gateway.router import Router
from shared import errors
from shared.config import ClientEntry, ProvidersFile

PROVIDERS = ProvidersFile.model_validate({
    "providers": {
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K1"},
                   "models": [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]},
                              {"id": "text-embedding-3-small", "capabilities": ["embed"]}]},
        "anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:2", "secret": {"env": "K2"},
                      "models": [{"id": "claude-haiku-4-5", "capabilities": ["chat", "chatStream"]}]},
        "lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:3"},
    },
    "defaults": {"chat": {"provider": "openai", "model": "gpt-4o-mini"},
                 "embed": {"provider": "openai", "model": "text-embedding-3-small"}},
})
LIVE = {("lmstudio", "chat"): ["qwen2.5-7b-instruct"], ("lmstudio", "embed"): ["nomic-embed-text-v1.5"]}


def router(up: set[str] | None = None) -> Router:
    return Router(PROVIDERS, lambda p, c: LIVE.get((p, c), []), lambda p: up is None or p in up)


def client(**kw: object) -> ClientEntry:
    return ClientEntry.model_validate({"token_sha256": "0" * 64, **kw})


def test_default_route_for_capability() -> None:
    route = router().route("chat", None, None, None)
    assert (route.provider, route.model) == ("openai", "gpt-4o-mini")
    assert "default" in route.reason


def test_explicit_provider_uses_its_first_model_or_default() -> None:
    assert router().route("chat", "anthropic", None, None).model == "claude-haiku-4-5"
    assert router().route("embed", "openai", None, None).model == "text-embedding-3-small"


def test_model_only_finds_the_provider_including_discovered_models() -> None:
    route = router().route("chat", None, "claude-haiku-4-5", None)
    assert route.provider == "anthropic"
    assert router().route("embed", None, "nomic-embed-text-v1.5", None).provider == "lmstudio"


def test_unknown_provider_lists_configured_ones() -> None:
    with pytest.raises(errors.NotFound, match="unknown provider 'nope'; configured: openai, anthropic, lmstudio"):
        router().route("chat", "nope", None, None)


def test_unknown_model_lists_available_models_for_the_capability() -> None:
    with pytest.raises(errors.NotFound) as caught:
        router().route("chat", None, "gpt-9", None)
    assert "gpt-4o-mini" in caught.value.message and "qwen2.5-7b-instruct" in caught.value.message
    assert "text-embedding-3-small" not in caught.value.message


def test_model_not_offered_by_named_provider() -> None:
    with pytest.raises(errors.NotFound, match="not offered by anthropic"):
        router().route("chat", "anthropic", "gpt-4o-mini", None)


def test_anthropic_cannot_embed() -> None:
    with pytest.raises(errors.Unsupported, match="embed is not supported by anthropic"):
        router().route("embed", "anthropic", None, None)


def test_client_provider_permissions() -> None:
    only_anthropic = client(providers=["anthropic"])
    with pytest.raises(errors.PermissionDenied):
        router().route("chat", "openai", None, only_anthropic)
    with pytest.raises(errors.PermissionDenied):
        router().route("chat", None, None, only_anthropic)  # the default is openai
    assert router().route("chat", None, "claude-haiku-4-5", only_anthropic).provider == "anthropic"


def test_missing_default_says_what_is_available() -> None:
    with pytest.raises(errors.NotFound, match="no default is configured for chatStream"):
        router().route("chatStream", None, None, None)

"""Routing decisions: explicit provider, by model, by default, and every refusal."""

from __future__ import annotations

import pytest

from gateway.router import Route, Router
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


ROUTING = ProvidersFile.model_validate({
    "providers": {
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K1"}, "priority": 10,
                   "models": [{"id": "shared-model", "capabilities": ["chat"]},
                              {"id": "gpt-4o-mini", "capabilities": ["chat"]}]},
        "azure": {"kind": "openai", "base_url": "http://127.0.0.1:4/v1", "secret": {"env": "K3"}, "priority": 5,
                  "models": [{"id": "shared-model", "capabilities": ["chat"]}]},
        "anthropic": {"kind": "anthropic", "base_url": "http://127.0.0.1:2", "secret": {"env": "K2"},
                      "models": [{"id": "claude-haiku-4-5", "capabilities": ["chat"]}]},
        "lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:3"},
    },
    "defaults": {"chat": {"provider": "openai", "model": "gpt-4o-mini"}},
    "fallbacks": {"chat": [{"provider": "anthropic"}, {"provider": "lmstudio", "model": "qwen"}],
                  "embed": [{"provider": "anthropic"}]},
    "aliases": {"fast": {"provider": "anthropic", "model": "claude-haiku-4-5"}},
})


def routing_router(up: set[str] | None = None) -> Router:
    return Router(ROUTING, lambda p, c: [], lambda p: up is None or p in up)


def test_alias_routes_to_its_target_even_without_override_rights() -> None:
    route = routing_router().route("chat", None, "fast", client(allow_override=False))
    assert (route.provider, route.model, route.reason) == ("anthropic", "claude-haiku-4-5", "alias 'fast'")


def test_override_needs_permission() -> None:
    locked = client(allow_override=False)
    with pytest.raises(errors.PermissionDenied, match="may not choose a provider or model"):
        routing_router().route("chat", "anthropic", None, locked)
    with pytest.raises(errors.PermissionDenied):
        routing_router().route("chat", None, "gpt-4o-mini", locked)
    assert routing_router().route("chat", None, None, locked).provider == "openai"


def test_model_offered_twice_goes_to_the_lower_priority_number_that_is_up() -> None:
    assert routing_router().route("chat", None, "shared-model", None).provider == "azure"
    assert routing_router(up={"openai"}).route("chat", None, "shared-model", None).provider == "openai"


def test_fallbacks_follow_config_then_same_model_elsewhere() -> None:
    r = routing_router()
    primary = r.route("chat", None, None, None)
    assert [(f.provider, f.model) for f in r.fallbacks("chat", primary, None)] == [
        ("anthropic", "claude-haiku-4-5"), ("lmstudio", "qwen")]
    by_model = r.route("chat", None, "shared-model", None)
    assert [(f.provider, f.model) for f in r.fallbacks("chat", by_model, None)] == [
        ("anthropic", "claude-haiku-4-5"), ("lmstudio", "qwen"), ("openai", "shared-model")]


def test_no_fallback_for_a_manual_override_or_forbidden_or_incapable_targets() -> None:
    r = routing_router()
    assert r.fallbacks("chat", r.route("chat", "openai", None, None), None) == []
    only_openai = client(providers=["openai"])
    assert r.fallbacks("chat", r.route("chat", None, None, only_openai), only_openai) == []
    assert r.fallbacks("embed", Route("openai", "e", "x"), None) == []  # anthropic cannot embed


def test_unknown_alias_target_is_a_config_error() -> None:
    import tempfile
    from pathlib import Path

    import orjson

    from shared.config import ConfigError, load_providers

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "providers.json"
        path.write_bytes(orjson.dumps({"providers": {}, "aliases": {"x": {"provider": "ghost"}}}))
        with pytest.raises(ConfigError, match=r"aliases\.x\.provider"):
            load_providers(path)


def test_unloaded_models_are_routed_around_and_reported_clearly() -> None:
    live = {("lmstudio", "chat"): ["qwen"]}
    unloaded = {("lmstudio", "chat"): ["llama-3.2-3b-instruct"]}
    r = Router(ROUTING, lambda p, c: live.get((p, c), []), lambda p: True, lambda p, c: unloaded.get((p, c), []))
    assert r.route("chat", "lmstudio", None, None).model == "qwen"
    with pytest.raises(errors.Unavailable, match="not loaded; load it there"):
        r.route("chat", "lmstudio", "llama-3.2-3b-instruct", None)
    with pytest.raises(errors.Unavailable, match=r"lms load llama-3\.2-3b-instruct"):
        r.route("chat", None, "llama-3.2-3b-instruct", None)


def test_client_model_allow_list_limits_routes_and_fallbacks() -> None:
    r = routing_router()
    haiku_only = client(models=["claude-haiku-4-5"])
    with pytest.raises(errors.PermissionDenied, match="may not use model 'gpt-4o-mini'"):
        r.route("chat", None, None, haiku_only)  # the default is an openai model
    assert r.route("chat", None, "fast", haiku_only).model == "claude-haiku-4-5"  # alias target allowed
    primary = r.route("chat", None, "claude-haiku-4-5", haiku_only)
    assert all(f.model == "claude-haiku-4-5" for f in r.fallbacks("chat", primary, haiku_only))


def test_a_provider_with_no_models_because_it_is_unreachable_says_so() -> None:
    why = "lmstudio is unreachable at http://127.0.0.1:3 since 2026-12-07T18:00:00Z (connection refused)"
    lonely = Router(PROVIDERS, lambda p, c: [], lambda p: True, unreachable=lambda p: why if p == "lmstudio" else None)
    with pytest.raises(errors.Unavailable) as caught:
        lonely.route("chat", "lmstudio", None, None)
    assert caught.value.message == why and caught.value.retryable
    with pytest.raises(errors.NotFound, match="no model configured"):  # reachable, truly nothing configured
        Router(PROVIDERS, lambda p, c: [], lambda p: True).route("chat", "lmstudio", None, None)

"""listModels and getHealth's model entries: what each model can do, and only what a client may use."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.service import GatewayService
from gateway.tool_schemas import ListModelsInput
from shared import errors
from shared.chat_parts import FEATURES
from shared.config import ClientEntry
from shared.models import ModelInfo
from tests.unit.gateway.service_fakes import PROVIDERS, answers, client, make_service, providers
from workers.providers.registry import KINDS


def _config() -> Any:
    """The fake providers; openai's chat model declares its features and limits in config."""
    edited = dict(PROVIDERS["providers"])
    openai = edited["openai"]
    edited["openai"] = {**openai, "models": [
        {"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"], "priority": 7,
         "features": ["tools", "vision"], "context_length": 128000, "max_output_tokens": 16384},
        *openai["models"][1:]]}
    return providers(providers=edited)


def _service() -> GatewayService:
    svc, fake = make_service(answers, _config())
    fake.worker("lmstudio").models = [
        ModelInfo("nomic-embed", ["embed"], loaded=True, capability_source="config"),
        ModelInfo("qwen-vl", ["chat", "chatStream"], loaded=False, kind="vlm", context_length=32768,
                  capability_source="server", features=["vision", "tools"]),
    ]
    return svc


def _listed(svc: GatewayService, who: ClientEntry | None = None, **filters: Any) -> list[tuple[str, str]]:
    out = svc.list_models(ListModelsInput.model_validate(filters), who)
    return [(m.provider, m.id) for m in out.models]


def _kind_features(kind: str) -> list[str]:
    return [f for f in FEATURES if f in KINDS[kind].features]


def test_every_model_is_listed_with_its_features_and_where_they_came_from() -> None:
    models = {(m.provider, m.id): m for m in _service().list_models(ListModelsInput(), None).models}
    assert list(models) == [("openai", "gpt-4o-mini"), ("openai", "text-embedding-3-small"),
                            ("backup", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"),
                            ("lmstudio", "nomic-embed"), ("lmstudio", "qwen-vl")]
    configured = models["openai", "gpt-4o-mini"]
    assert (configured.kind, configured.features, configured.feature_source) == ("openai", ["vision", "tools"],
                                                                                 "config")
    assert (configured.context_length, configured.max_output_tokens, configured.priority) == (128000, 16384, 7)
    assert configured.capabilities == ["chat", "chatStream"] and configured.capability_source == "config"
    discovered = models["lmstudio", "qwen-vl"]
    assert (discovered.features, discovered.feature_source, discovered.loaded) == (["vision", "tools"], "server",
                                                                                  False)
    assert (discovered.capability_source, discovered.context_length, discovered.priority) == ("server", 32768, None)
    by_kind = models["anthropic", "claude-haiku-4-5"]
    assert (by_kind.features, by_kind.feature_source) == (_kind_features("anthropic"), "kind")
    assert models["lmstudio", "nomic-embed"].loaded is True


def test_a_client_sees_only_the_providers_and_models_it_may_use() -> None:
    svc = _service()
    assert _listed(svc, client(providers=["openai", "lmstudio"], models=["gpt-4o-mini", "qwen-vl"])) == [
        ("openai", "gpt-4o-mini"), ("lmstudio", "qwen-vl")]
    assert _listed(svc, client(providers=["anthropic"])) == [("anthropic", "claude-haiku-4-5")]
    assert _listed(svc, client(models=["claude-haiku-4-5"])) == [("anthropic", "claude-haiku-4-5")]


def test_filters_by_capability_feature_and_provider() -> None:
    svc = _service()
    assert _listed(svc, capability="embed") == [("openai", "text-embedding-3-small"), ("lmstudio", "nomic-embed")]
    # Config and the server said vision; the rest have it only if their kind carries it.
    by_kind = [("backup", "gpt-4o-mini", "openai"), ("anthropic", "claude-haiku-4-5", "anthropic")]
    assert _listed(svc, feature="vision", capability="chat") == [
        ("openai", "gpt-4o-mini"), *((p, m) for p, m, kind in by_kind if "vision" in KINDS[kind].features),
        ("lmstudio", "qwen-vl")]
    assert _listed(svc, provider="lmstudio", capability="chat") == [("lmstudio", "qwen-vl")]


@pytest.mark.parametrize("who", [None, client(providers=["openai"])])
def test_an_unknown_or_forbidden_provider_filter_is_not_found_naming_only_usable_ones(
        who: ClientEntry | None) -> None:
    svc = _service()
    with pytest.raises(errors.NotFound) as caught:
        _listed(svc, who, provider="anthropic" if who else "nope")
    assert "available: openai" in caught.value.message
    if who is not None:
        assert "lmstudio" not in caught.value.message


def test_health_models_show_their_features() -> None:
    svc = _service()
    lmstudio = next(w for w in svc.health().workers if w.provider == "lmstudio")
    qwen = next(m for m in lmstudio.models if m.id == "qwen-vl")
    assert (qwen.features, qwen.feature_source, qwen.kind) == (["vision", "tools"], "server", "vlm")
    embed = next(m for m in lmstudio.models if m.id == "nomic-embed")
    assert (embed.features, embed.feature_source) == (_kind_features("lmstudio"), "kind")

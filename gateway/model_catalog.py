"""What each model can do, merged from providers.json, the worker's listing and the kind.

``listModels`` and ``getHealth`` read it. A model's features (``shared.chat_parts.Feature``)
are its config ``features`` when the operator wrote them, else what its server said in
discovery (``ModelInfo.features``), else everything its kind's adapter can carry
(``KindSpec.features``); the answer says which (``feature_source``). Capabilities,
context length and max output come from config first, then from the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gateway.model_features import model_features
from gateway.tool_schemas import ListedModelOut, ListModelsInput, ModelOut
from shared import errors
from shared.config import ClientEntry, ProviderConfig, ProvidersFile
from shared.models import ModelInfo

__all__ = ["health_models", "list_models"]


def list_models(providers: ProvidersFile, worker_models: Callable[[str], list[ModelInfo]],
                args: ListModelsInput, client: ClientEntry | None) -> list[ListedModelOut]:
    """The models ``client`` may use, with ``args``' filters applied, in providers.json order."""
    usable = [name for name in providers.providers if client is None or client.may_use(name)]
    if args.provider is not None and args.provider not in usable:
        raise errors.NotFound(f"no provider {args.provider!r} for this client; available: "
                              f"{', '.join(usable) or 'none'}")
    listed: list[ListedModelOut] = []
    for name in usable:
        if args.provider is not None and name != args.provider:
            continue
        for model in _provider_models(name, providers.providers[name], worker_models(name)):
            if client is not None and not client.may_use_model(model.id):
                continue
            if args.capability is not None and args.capability not in model.capabilities:
                continue
            if args.feature is not None and args.feature not in model.features:
                continue
            listed.append(model)
    return listed


def _provider_models(name: str, config: ProviderConfig, infos: list[ModelInfo]) -> Iterator[ListedModelOut]:
    """The provider's configured models (merged with what its worker reports), then the discovered-only ones."""
    by_id = {info.id: info for info in infos}
    configured_ids = set()
    for model in config.models:
        configured_ids.add(model.id)
        info = by_id.get(model.id)
        features, source = model_features(config, model, info)
        yield ListedModelOut(
            provider=name, kind=config.kind, id=model.id, capabilities=list(model.capabilities),
            capability_source="config", features=list(features), feature_source=source,
            context_length=model.context_length or (info.context_length if info else None),
            max_output_tokens=model.max_output_tokens or (info.max_output_tokens if info else None),
            loaded=info.loaded if info else None, priority=model.priority)
    for info in infos:
        if info.id in configured_ids:
            continue
        features, source = model_features(config, None, info)
        yield ListedModelOut(
            provider=name, kind=config.kind, id=info.id, capabilities=list(info.capabilities),
            capability_source=info.capability_source, features=list(features), feature_source=source,
            context_length=info.context_length, max_output_tokens=info.max_output_tokens, loaded=info.loaded)


def health_models(config: ProviderConfig, infos: list[ModelInfo]) -> list[ModelOut]:
    """A worker's models as ``getHealth`` shows them, each with its features."""
    configured = {m.id: m for m in config.models}
    out = []
    for info in infos:
        model = configured.get(info.id)
        features, source = model_features(config, model, info)
        out.append(ModelOut(
            id=info.id, capabilities=list(info.capabilities), loaded=info.loaded, kind=info.kind,
            context_length=info.context_length or (model.context_length if model else None),
            capability_source=info.capability_source, features=list(features), feature_source=source,
            max_output_tokens=info.max_output_tokens or (model.max_output_tokens if model else None)))
    return out

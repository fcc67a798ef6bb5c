"""What a model can do beyond plain text, and whether a route can serve a call (issue #16).

A model's features are, first found: its ``features`` in providers.json, what its server
said (``ModelInfo.features`` from discovery), or all its kind's adapter can carry
(``KindSpec.features``). A call needing a feature the chosen model lacks, or setting a
sampling parameter its kind does not pass, is refused as ``unsupported`` before any paid
request (or the parameter dropped, when the call says ``drop_unsupported``); a model may
refuse some of what its kind passes on (``KindSpec.sampling_rules``). Only calls
beyond plain text ask; a plain text chat never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from gateway.chat_request import ChatCall
from gateway.reasoning_budget import fit_reasoning
from shared import errors
from shared.chat_parts import FEATURES, Feature, Reasoning, SamplingParam
from shared.config import ModelConfig, ProviderConfig, ProvidersFile
from shared.models import ModelInfo
from workers.providers.registry import KINDS  # declarations only (see test_layering)

__all__ = ["FeatureSource", "ModelFeatures", "describe_features", "model_features"]

FeatureSource = Literal["config", "server", "kind"]


def model_features(config: ProviderConfig, configured: ModelConfig | None,
                   info: ModelInfo | None) -> tuple[list[Feature], FeatureSource]:
    """A model's features, in the shared order, and where they came from: its providers.json
    entry, else its server's word in discovery, else all its kind's adapter can carry.
    The one place this order is decided (routing, listModels and getHealth read it)."""
    chosen: frozenset[Feature] | list[Feature]
    source: FeatureSource
    if configured is not None and configured.features is not None:
        chosen, source = configured.features, "config"
    elif info is not None and info.features is not None:
        chosen, source = info.features, "server"
    else:
        chosen, source = KINDS[config.kind].features, "kind"
    return [f for f in FEATURES if f in chosen], source


def describe_features(features: frozenset[Feature] | set[Feature]) -> str:
    """In the shared order, e.g. "vision, tools"."""
    return ", ".join(f for f in FEATURES if f in features)


class ModelFeatures:
    def __init__(self, providers: ProvidersFile, discovered: Callable[[str], list[ModelInfo]]) -> None:
        """``discovered``: the models a provider's worker reported (with the server's features)."""
        self._providers = providers
        self._discovered = discovered

    def of(self, provider: str, model: str) -> frozenset[Feature]:
        config = self._providers.providers[provider]
        configured = next((m for m in config.models if m.id == model), None)
        info = None
        if configured is None or configured.features is None:
            info = next((i for i in self._discovered(provider) if i.id == model), None)
        return frozenset(model_features(config, configured, info)[0])

    def max_output(self, provider: str, model: str) -> int | None:
        """The model's output limit: its providers.json entry's, else what discovery said."""
        configured = next((m for m in self._providers.providers[provider].models if m.id == model), None)
        if configured is not None and configured.max_output_tokens is not None:
            return configured.max_output_tokens
        info = next((i for i in self._discovered(provider) if i.id == model), None)
        return info.max_output_tokens if info is not None else None

    def fit_reasoning(self, call: ChatCall, provider: str, model: str) -> tuple[Reasoning | None, str | None]:
        """The call's reasoning with its budget in the range ``model`` takes, and the note the
        result carries when it was moved (``gateway.reasoning_budget``)."""
        if call.reasoning is None:
            return None, None
        kind = KINDS[self._providers.providers[provider].kind]
        return fit_reasoning(call.reasoning, kind, model, self.max_output(provider, model))

    def sampling(self, provider: str, model: str) -> frozenset[SamplingParam]:
        """The sampling parameters a call to ``model`` may carry: what the provider's kind passes
        on, less what the model refuses (``KindSpec.sampling_rules``)."""
        return KINDS[self._providers.providers[provider].kind].sampling_of(model)

    def temperature(self, temperature: float | None, drop: bool, provider: str, model: str) -> float | None:
        """The temperature to send ``model``: as given, or None when it refuses one and the call
        drops what is not taken; ``unsupported`` (before the call) when it refuses one otherwise."""
        kind = KINDS[self._providers.providers[provider].kind]
        if temperature is None or kind.takes_temperature(model):
            return temperature
        if drop:
            return None
        raise errors.Unsupported(
            f"model {model!r} of {provider} ({kind.title}) does not take temperature (it samples at its own "
            "default); leave it out, choose another model, or set drop_unsupported to drop it", provider=provider)

    def temperature_fits(self, temperature: float | None, drop: bool, provider: str, model: str) -> str | None:
        """Why ``model`` cannot take the call's temperature (a fallback's skip reason), or None if it can."""
        if temperature is None or drop or KINDS[self._providers.providers[provider].kind].takes_temperature(model):
            return None
        return "does not take temperature"

    def lacking(self, call: ChatCall, provider: str, model: str) -> frozenset[Feature]:
        return call.needs - self.of(provider, model) if call.needs else frozenset()

    def why_not(self, call: ChatCall, provider: str, model: str) -> str | None:
        """Why the route cannot serve ``call`` (a fallback's skip reason), or None if it can."""
        if missing := self.lacking(call, provider, model):
            return f"lacks {describe_features(missing)}"
        if not call.drop_unsupported and (params := call.unsupported_sampling(self.sampling(provider, model))):
            return f"does not take {', '.join(params)}"
        return None

    def check(self, call: ChatCall, provider: str, model: str) -> list[SamplingParam]:
        """Unsupported unless the route can serve ``call``; else the sampling parameters to drop."""
        kind = KINDS[self._providers.providers[provider].kind]
        if missing := self.lacking(call, provider, model):
            raise errors.Unsupported(
                f"model {model!r} of {provider} ({kind.title}) does not support {describe_features(missing)}; "
                "choose a model that does (listModels shows what each model can do)", provider=provider)
        params = call.unsupported_sampling(kind.sampling_of(model))
        if params and not call.drop_unsupported:
            by_model = any(p in kind.sampling for p in params)  # the kind passes it on; this model refuses it
            who = f"model {model!r} of {provider} ({kind.title})" if by_model else f"{provider} ({kind.title})"
            raise errors.Unsupported(
                f"{who} does not take {', '.join(params)}; leave it out, choose another "
                "provider or model, or set drop_unsupported to drop it", provider=provider)
        return params

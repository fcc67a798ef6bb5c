"""What a model can do beyond plain text, and whether a route can serve a call (issue #16).

A model's features are, first found: its ``features`` in providers.json, what its server
said (``ModelInfo.features`` from discovery), or all its kind's adapter can carry
(``KindSpec.features``). A call needing a feature the chosen model lacks, or setting a
sampling parameter its kind does not pass, is refused as ``unsupported`` before any paid
request (or the parameter dropped, when the call says ``drop_unsupported``). Only calls
beyond plain text ask; a plain text chat never does.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.chat_request import ChatCall
from shared import errors
from shared.chat_parts import FEATURES, Feature, SamplingParam
from shared.config import ProvidersFile
from shared.models import ModelInfo
from workers.providers.registry import KINDS  # declarations only (see test_layering)

__all__ = ["ModelFeatures", "describe_features"]


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
        for m in config.models:
            if m.id == model and m.features is not None:
                return frozenset(m.features)
        for info in self._discovered(provider):
            if info.id == model and info.features is not None:
                return frozenset(info.features)
        return KINDS[config.kind].features

    def sampling(self, provider: str) -> frozenset[SamplingParam]:
        """The sampling parameters the provider's kind passes on."""
        return KINDS[self._providers.providers[provider].kind].sampling

    def lacking(self, call: ChatCall, provider: str, model: str) -> frozenset[Feature]:
        return call.needs - self.of(provider, model) if call.needs else frozenset()

    def why_not(self, call: ChatCall, provider: str, model: str) -> str | None:
        """Why the route cannot serve ``call`` (a fallback's skip reason), or None if it can."""
        if missing := self.lacking(call, provider, model):
            return f"lacks {describe_features(missing)}"
        if not call.drop_unsupported and (params := call.unsupported_sampling(self.sampling(provider))):
            return f"does not take {', '.join(params)}"
        return None

    def check(self, call: ChatCall, provider: str, model: str) -> list[SamplingParam]:
        """Unsupported unless the route can serve ``call``; else the sampling parameters to drop."""
        kind = KINDS[self._providers.providers[provider].kind]
        if missing := self.lacking(call, provider, model):
            raise errors.Unsupported(
                f"model {model!r} of {provider} ({kind.title}) does not support {describe_features(missing)}; "
                "choose a model that does (listModels shows what each model can do)", provider=provider)
        params = call.unsupported_sampling(kind.sampling)
        if params and not call.drop_unsupported:
            raise errors.Unsupported(
                f"{provider} ({kind.title}) does not take {', '.join(params)}; leave it out, choose another "
                "provider, or set drop_unsupported to drop it", provider=provider)
        return params

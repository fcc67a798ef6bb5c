"""Choosing the provider and model for a call.

In order: an explicit ``provider`` (with its ``model`` or its default for the
capability); else an explicit ``model``, served by whichever configured provider offers
it (preferring one whose worker is up); else the configured default for the capability.
Every refusal says what *is* available, so the caller can fix the call in one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared import errors
from shared.config import KIND_CAPABILITIES, ClientEntry, ProvidersFile
from shared.models import Capability

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    model: str
    reason: str


class Router:
    def __init__(self, providers: ProvidersFile, live_models: Callable[[str, Capability], list[str]],
                 is_up: Callable[[str], bool]) -> None:
        """``live_models`` gives the models a worker reported (e.g. discovered from LM Studio)."""
        self._providers = providers
        self._live_models = live_models
        self._is_up = is_up

    def known_models(self, provider: str, capability: Capability) -> list[str]:
        configured = self._providers.providers[provider].models_for(capability)
        live = [m for m in self._live_models(provider, capability) if m not in configured]
        return configured + live

    def route(
        self, capability: Capability, provider: str | None, model: str | None, client: ClientEntry | None
    ) -> Route:
        if provider is not None:
            return self._explicit_provider(capability, provider, model, client)
        if model is not None:
            return self._by_model(capability, model, client)
        return self._default(capability, client)

    def _explicit_provider(
        self, capability: Capability, provider: str, model: str | None, client: ClientEntry | None
    ) -> Route:
        self._check_provider(capability, provider, client)
        known = self.known_models(provider, capability)
        if model is not None:
            if known and model not in known:
                raise errors.NotFound(
                    f"model {model!r} is not offered by {provider} for {capability}; "
                    f"available: {', '.join(known)}",
                    provider=provider,
                )
            return Route(provider, model, "provider and model named in the call")
        default = self._providers.defaults.get(capability)
        if default is not None and default.provider == provider and default.model:
            return Route(provider, default.model, f"provider named in the call; its default {capability} model")
        if known:
            return Route(provider, known[0], f"provider named in the call; its first {capability} model")
        raise errors.NotFound(
            f"{provider} has no model configured for {capability}; name one with \"model\"", provider=provider
        )

    def _by_model(self, capability: Capability, model: str, client: ClientEntry | None) -> Route:
        offering = [
            name
            for name, cfg in self._providers.providers.items()
            if capability in KIND_CAPABILITIES[cfg.kind] and model in self.known_models(name, capability)
        ]
        allowed = [p for p in offering if client is None or client.may_use(p)]
        if not offering:
            raise errors.NotFound(f"no provider offers model {model!r} for {capability}; "
                                  f"available: {self._available(capability)}")
        if not allowed:
            raise errors.PermissionDenied(f"this client may not use the providers offering {model!r}")
        up = [p for p in allowed if self._is_up(p)]
        chosen = (up or allowed)[0]
        return Route(chosen, model, "model named in the call" + ("" if up else "; its worker is not up yet"))

    def _default(self, capability: Capability, client: ClientEntry | None) -> Route:
        default = self._providers.defaults.get(capability)
        if default is None:
            raise errors.NotFound(
                f"no default is configured for {capability}; name a provider or model "
                f"(available: {self._available(capability)})"
            )
        if default.model is None:
            return self._explicit_provider(capability, default.provider, None, client)
        self._check_provider(capability, default.provider, client)
        return Route(default.provider, default.model, f"configured default for {capability}")

    def _check_provider(self, capability: Capability, provider: str, client: ClientEntry | None) -> None:
        config = self._providers.providers.get(provider)
        if config is None:
            raise errors.NotFound(
                f"unknown provider {provider!r}; configured: {', '.join(self._providers.providers) or 'none'}"
            )
        if client is not None and not client.may_use(provider):
            raise errors.PermissionDenied(f"this client may not use provider {provider!r}", provider=provider)
        if capability not in KIND_CAPABILITIES[config.kind]:
            verb = "embed" if capability == "embed" else capability
            raise errors.Unsupported(f"{verb} is not supported by {config.kind}", provider=provider)

    def _available(self, capability: Capability) -> str:
        parts = [
            f"{name}: {', '.join(models)}"
            for name in self._providers.providers
            if (models := self.known_models(name, capability))
        ]
        return "; ".join(parts) or "none"

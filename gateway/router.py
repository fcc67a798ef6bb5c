"""Choosing the provider and model for a call, and what to fall back to.

Order of decision:

1. an explicit ``provider`` (with its ``model`` or its default for the capability): a
   manual override, allowed only if the client's registry entry permits overrides;
2. a ``model`` that is an alias from providers.json: the alias's target;
3. an explicit ``model`` (also an override): the provider offering it, preferring
   workers that are up, then lower ``priority``;
4. the configured default for the capability; for a call needing features (images, tools,
   a schema, reasoning: ``shared.chat_parts.Feature``) the default only if its model has
   them, else the first model by priority among the providers and models the client may
   use that has them, saying why in the route's reason.

Fallbacks (used by the service when the chosen route is down, its circuit is open, or it
fails retryably before the first chunk): the configured ``fallbacks`` for the capability
in order, then other providers offering the same model, by priority. A manual override
gets no fallback: the caller asked for that provider. Every refusal says what *is*
available, so the caller can fix the call in one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared import errors
from shared.chat_parts import FEATURES, Feature
from shared.config import KIND_CAPABILITIES, ClientEntry, ProvidersFile
from shared.models import Capability
from workers.providers.registry import KINDS  # declarations only (see test_layering)

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    model: str
    reason: str
    override: bool = False  # named by the caller: no silent switch to another provider


class Router:
    def __init__(
        self,
        providers: ProvidersFile,
        live_models: Callable[[str, Capability], list[str]],
        is_up: Callable[[str], bool],
        unloaded_models: Callable[[str, Capability], list[str]] | None = None,
        *, unreachable: Callable[[str], str | None] | None = None,
        features: Callable[[str, str], frozenset[Feature]] | None = None,
    ) -> None:
        """``live_models``: models a worker reported ready (e.g. discovered from LM Studio);
        ``unloaded_models``: models it lists but has not loaded, which are never routed to;
        ``unreachable``: the worker's message when its provider cannot be reached, else None;
        ``features``: what a provider's model can do beyond plain text (routing by needs)."""
        self._providers = providers
        self._live_models = live_models
        self._is_up = is_up
        self._unloaded = unloaded_models or (lambda _p, _c: [])
        self._unreachable = unreachable or (lambda _p: None)
        self._features = features or (lambda _p, _m: frozenset())

    def known_models(self, provider: str, capability: Capability) -> list[str]:
        config = self._providers.providers[provider]
        configured = sorted((m for m in config.models if capability in m.capabilities), key=lambda m: m.priority)
        ids = [m.id for m in configured]
        return ids + [m for m in self._live_models(provider, capability) if m not in ids]

    def route(
        self, capability: Capability, provider: str | None, model: str | None, client: ClientEntry | None,
        needs: frozenset[Feature] = frozenset(),
    ) -> Route:
        """The route for a call; ``needs``: the features it uses, which decide the default route."""
        if model is not None and provider is None and model in self._providers.aliases:
            target = self._providers.aliases[model]
            self._check_provider(capability, target.provider, client)
            chosen = target.model or self._default_model(capability, target.provider)
            return self._check_model(Route(target.provider, chosen, f"alias {model!r}"), client)
        overriding = provider is not None or model is not None
        if overriding and client is not None and not client.allow_override:
            raise errors.PermissionDenied(
                "this client may not choose a provider or model; omit them to use the configured route")
        if provider is not None:
            route = self._explicit_provider(capability, provider, model, client)
        elif model is not None:
            route = self._by_model(capability, model, client)
        elif needs:
            route = self._by_needs(capability, needs, client)
        else:
            route = self._default(capability, client)
        return self._check_model(route, client)

    def fallbacks(self, capability: Capability, primary: Route, client: ClientEntry | None) -> list[Route]:
        if primary.override:
            return []
        candidates: list[tuple[str, str | None]] = [
            (t.provider, t.model) for t in self._providers.fallbacks.get(capability, [])]
        candidates += [(p, primary.model) for p in self._offering(capability, primary.model)]
        routes: list[Route] = []
        seen = {(primary.provider, primary.model)}
        for provider, model in candidates:
            if not self._usable(capability, provider, client):
                continue
            chosen = model or self._preferred_model(capability, provider)
            forbidden = client is not None and chosen is not None and not client.may_use_model(chosen)
            if chosen is None or (provider, chosen) in seen or forbidden:
                continue
            seen.add((provider, chosen))
            routes.append(Route(provider, chosen, f"fallback for {primary.provider}/{primary.model}"))
        return routes

    # ----------------------------------------------------------------- internals

    @staticmethod
    def _check_model(route: Route, client: ClientEntry | None) -> Route:
        if client is not None and not client.may_use_model(route.model):
            raise errors.PermissionDenied(
                f"this client may not use model {route.model!r} (allowed: {', '.join(client.models)})",
                provider=route.provider)
        return route

    def _load_hint(self, provider: str, model: str) -> str:
        """How the provider's kind loads a model, e.g. " (LM Studio: lms load m)"; "" where it has none."""
        spec = KINDS[self._providers.providers[provider].kind]
        return f" ({spec.title}: {spec.load_hint.format(model=model)})" if spec.load_hint else ""

    def _explicit_provider(
        self, capability: Capability, provider: str, model: str | None, client: ClientEntry | None
    ) -> Route:
        self._check_provider(capability, provider, client)
        if model is None:
            chosen = self._default_model(capability, provider)
            return Route(provider, chosen, f"provider named in the call; its {capability} default", override=True)
        if model in self._unloaded(provider, capability):
            raise errors.Unavailable(
                f"model {model!r} is known to {provider} but not loaded; load it there"
                f"{self._load_hint(provider, model)} or choose a loaded one: "
                f"{', '.join(self.known_models(provider, capability)) or 'none'}",
                provider=provider,
            )
        known = self.known_models(provider, capability)
        if known and model not in known:
            raise errors.NotFound(
                f"model {model!r} is not offered by {provider} for {capability}; available: {', '.join(known)}",
                provider=provider,
            )
        return Route(provider, model, "provider and model named in the call", override=True)

    def _by_model(self, capability: Capability, model: str, client: ClientEntry | None) -> Route:
        offering = self._offering(capability, model)
        if not offering:
            holders = [p for p in self._providers.providers if model in self._unloaded(p, capability)]
            if holders:
                raise errors.Unavailable(
                    f"model {model!r} is known to {', '.join(holders)} but not loaded; load it"
                    f"{self._load_hint(holders[0], model)} or choose a loaded one", provider=holders[0])
            raise errors.NotFound(
                f"no provider offers model {model!r} for {capability}; available: {self._available(capability)}")
        allowed = [p for p in offering if client is None or client.may_use(p)]
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
        self._check_provider(capability, default.provider, client)
        model = default.model or self._default_model(capability, default.provider)
        return Route(default.provider, model, f"configured default for {capability}")

    def _by_needs(self, capability: Capability, needs: frozenset[Feature], client: ClientEntry | None) -> Route:
        """The default if its model has ``needs``, else the first model by priority that has them."""
        try:
            default: Route | None = self._default(capability, client)
        except (errors.NotFound, errors.PermissionDenied):
            default = None  # no default this client may use: any model with the features will do
        if default is not None and needs <= self._features(default.provider, default.model):
            return default
        found = self._first_with(capability, needs, client)
        wanted = ", ".join(f for f in FEATURES if f in needs)
        if default is None:
            why = f"no {capability} default this client may use"
        else:
            missing = needs - self._features(default.provider, default.model)
            why = f"the {capability} default {default.provider}/{default.model} lacks " + ", ".join(
                f for f in FEATURES if f in missing)
        if found is None:
            raise errors.Unsupported(f"no model this client may use has {wanted} ({why})",
                                     provider=default.provider if default else None)
        return Route(found[0], found[1], f"{why}; {found[0]}/{found[1]} is the first by priority with {wanted}")

    def _first_with(
        self, capability: Capability, needs: frozenset[Feature], client: ClientEntry | None
    ) -> tuple[str, str] | None:
        """The first (provider, model) by priority the client may use that has ``needs``, preferring workers up."""
        candidates = [
            (name, model)
            for name in sorted(self._providers.providers, key=lambda n: self._providers.providers[n].priority)
            if self._usable(capability, name, client)
            for model in self.known_models(name, capability)
            if (client is None or client.may_use_model(model)) and needs <= self._features(name, model)
        ]
        up = [c for c in candidates if self._is_up(c[0])]
        return (up or candidates)[0] if candidates else None

    def _preferred_model(self, capability: Capability, provider: str) -> str | None:
        """The capability default if it is this provider's, else its best-priority known model."""
        default = self._providers.defaults.get(capability)
        if default is not None and default.provider == provider and default.model:
            return default.model
        known = self.known_models(provider, capability)
        return known[0] if known else None

    def _default_model(self, capability: Capability, provider: str) -> str:
        model = self._preferred_model(capability, provider)
        if model is None and (why := self._unreachable(provider)) is not None:
            # Nothing discovered because the server is away: say that, not "no model configured".
            raise errors.Unavailable(why, provider=provider)
        if model is None:
            raise errors.NotFound(
                f"{provider} has no model configured for {capability}; name one with \"model\"", provider=provider)
        return model

    def _offering(self, capability: Capability, model: str) -> list[str]:
        """Providers that list ``model`` for ``capability``, lowest priority number first."""
        names = [
            name for name, cfg in self._providers.providers.items()
            if capability in KIND_CAPABILITIES[cfg.kind] and model in self.known_models(name, capability)
        ]
        return sorted(names, key=lambda n: self._providers.providers[n].priority)

    def _usable(self, capability: Capability, provider: str, client: ClientEntry | None) -> bool:
        config = self._providers.providers.get(provider)
        return (config is not None and capability in KIND_CAPABILITIES[config.kind]
                and (client is None or client.may_use(provider)))

    def _check_provider(self, capability: Capability, provider: str, client: ClientEntry | None) -> None:
        config = self._providers.providers.get(provider)
        if config is None:
            raise errors.NotFound(
                f"unknown provider {provider!r}; configured: {', '.join(self._providers.providers) or 'none'}")
        if client is not None and not client.may_use(provider):
            raise errors.PermissionDenied(f"this client may not use provider {provider!r}", provider=provider)
        if capability not in KIND_CAPABILITIES[config.kind]:
            raise errors.Unsupported(f"{capability} is not supported by {config.kind}", provider=provider)

    def _available(self, capability: Capability) -> str:
        parts = [
            f"{name}: {', '.join(models)}"
            for name in self._providers.providers
            if (models := self.known_models(name, capability))
        ]
        return "; ".join(parts) or "none"

"""What an Ollama server offers: pulled models (``/api/tags``), loaded ones (``/api/ps``) and,
per model, what it can do (``/api/show``'s ``capabilities``).

Features (``ModelInfo.features``) come from the same ``capabilities``: ``vision``, ``tools``,
and ``thinking`` -> ``reasoning``; ``completion`` -> ``json_schema`` too, since Ollama
constrains any completion model's output to a ``format`` schema (its runner's grammar), so
structured output needs nothing of the model.

Capabilities come from, in order: providers.json, the server's own ``capabilities``
(``completion`` -> chat and chatStream, ``embedding`` -> embed), and only when the server
does not say (an Ollama before ``capabilities`` existed, or ``/api/show`` failing) the
model's name. ``/api/show`` answers are cached per model digest: a digest names the
model's exact content, so its capabilities cannot change, and a re-pulled model gets a
new digest and is asked again. A transient failure is not cached: the next listing asks again.

Ollama loads a pulled model at its first call, so every pulled model can serve:
``loaded`` is True for those in memory (``/api/ps``) and None (not False, which the gateway
reads as "cannot serve until someone loads it") for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import errors
from shared.chat_parts import Feature
from shared.models import Capability, ModelInfo
from workers.providers.http_base import HttpAdapter, as_int

__all__ = ["SERVER_CAPABILITIES", "SERVER_FEATURES", "ModelFacts", "discover", "listed_names", "show_facts"]

# Ollama's capability names and what each lets this gateway do.
SERVER_CAPABILITIES: dict[str, list[Capability]] = {
    "completion": ["chat", "chatStream"],
    "embedding": ["embed"],
}
# Ollama's capability names and the features each gives a model.
SERVER_FEATURES: dict[str, Feature] = {
    "completion": "json_schema",
    "vision": "vision",
    "tools": "tools",
    "thinking": "reasoning",
}
# At most this many models per listing: a listing is also a health probe, so it stays bounded.
_MAX_MODELS = 500


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What ``/api/show`` said about one model digest; ``capabilities`` (and ``features``) None
    when it did not say."""

    capabilities: list[Capability] | None
    context_length: int | None
    features: list[Feature] | None = None


def listed_names(data: Any, adapter: HttpAdapter) -> list[tuple[str, str]]:
    """``(name, digest)`` of each model in a ``/api/tags`` or ``/api/ps`` answer."""
    items = data.get("models") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise adapter.bad_payload("an unreadable model list")
    listed = []
    for item in items[:_MAX_MODELS]:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            digest = item.get("digest")
            listed.append((item["name"], digest if isinstance(digest, str) else ""))
    return listed


def show_facts(data: Any) -> ModelFacts:
    """Capabilities and context length from one ``/api/show`` answer."""
    if not isinstance(data, dict):
        return ModelFacts(None, None)
    raw = data.get("capabilities")
    if not isinstance(raw, list):
        return ModelFacts(None, _context_length(data.get("model_info")))
    names = [name for name in raw if isinstance(name, str)]
    capabilities: list[Capability] = []
    for name in names:
        for capability in SERVER_CAPABILITIES.get(name, []):
            if capability not in capabilities:
                capabilities.append(capability)
    features = [SERVER_FEATURES[name] for name in SERVER_FEATURES if name in names]
    return ModelFacts(capabilities, _context_length(data.get("model_info")), features)


def _context_length(info: Any) -> int | None:
    """``<architecture>.context_length`` of ``model_info`` (GGUF metadata keys)."""
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    return as_int(info.get(f"{arch}.context_length")) if isinstance(arch, str) else None


async def discover(adapter: HttpAdapter, base_url: str, cache: dict[str, ModelFacts]) -> list[ModelInfo]:
    """The pulled models with what each can do, whether it is loaded, and where that came from."""
    pulled = listed_names(await adapter.request_json("GET", f"{base_url}/api/tags"), adapter)
    loaded = await _loaded(adapter, base_url)
    for digest in set(cache) - {digest for _, digest in pulled}:
        del cache[digest]  # removed (or re-pulled under a new digest): forget it
    infos = []
    for name, digest in pulled:
        state = True if loaded is not None and name in loaded else None
        if adapter.configured(name):
            infos.append(adapter.model_info(name, loaded=state))
            continue
        facts = cache.get(digest) if digest else None
        if facts is None:
            facts = await _show(adapter, base_url, name)
            if facts is not None and digest:
                cache[digest] = facts
        if facts is None or facts.capabilities is None:
            # The server did not say: the name is all there is (source "name").
            infos.append(adapter.model_info(name, loaded=state,
                                            context_length=facts.context_length if facts else None))
        else:
            infos.append(adapter.model_info(name, facts.capabilities, "server", loaded=state,
                                            context_length=facts.context_length, features=facts.features))
    return infos


async def _loaded(adapter: HttpAdapter, base_url: str) -> set[str] | None:
    """Names of the models in memory; None when the server cannot say (no ``/api/ps``, or it failed).

    ``/api/tags`` has just answered, so the pulled models are known and can serve: a failing
    ``/api/ps`` costs only the loaded flags, not the whole listing.
    """
    try:
        data = await adapter.request_json("GET", f"{base_url}/api/ps")
    except errors.LLMCallerError:
        return None
    return {name for name, _ in listed_names(data, adapter)}


async def _show(adapter: HttpAdapter, base_url: str, name: str) -> ModelFacts | None:
    """``/api/show`` for one model; None (ask again next time) when the server is busy or away."""
    try:
        data = await adapter.request_json("POST", f"{base_url}/api/show", {"model": name})
    except (errors.NotFound, errors.InvalidRequest, errors.Unsupported):
        return ModelFacts(None, None)  # removed meanwhile, or too old to show: its answer will not change
    except errors.LLMCallerError:
        return None
    return show_facts(data)

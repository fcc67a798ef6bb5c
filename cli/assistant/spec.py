"""A provider change as data, and how it is applied to the raw providers.json content.

Both the flag commands and the menu describe what the operator wants as a
``ProviderEdit``; ``apply_edit`` and ``drop_provider`` turn it into new file content.
Checks here are the ones whose message should name the flag or answer at fault; the
rest is left to the config models, which the save pipeline runs on the result.
"""

from __future__ import annotations

import argparse
import copy
import re
from dataclasses import dataclass, field
from typing import Any

import yarl

from cli.options import CommandRefused
from shared.config import _NAME as NAME_PATTERN  # the one definition of a valid name
from shared.config import KIND_CAPABILITIES
from shared.models import CAPABILITIES, capabilities_by_name
from workers.providers.registry import KINDS

__all__ = [
    "DEFAULT_BASE_URLS",
    "ModelChoice",
    "ProviderEdit",
    "apply_edit",
    "check_capabilities",
    "check_name",
    "check_url",
    "drop_provider",
    "parse_default",
    "parse_model",
]

# Offered by the menu, in the registry's order.
DEFAULT_BASE_URLS = {name: spec.default_base_url for name, spec in KINDS.items()}


@dataclass(frozen=True)
class ModelChoice:
    id: str
    capabilities: tuple[str, ...]


def parse_model(text: str) -> ModelChoice:
    """``ID`` or ``ID:cap1,cap2``; a colon followed by non-capabilities stays part of the id (``llama3:8b``)."""
    text = text.strip()
    model_id, sep, tail = text.rpartition(":")
    caps = [c.strip() for c in tail.split(",") if c.strip()] if sep else []
    known = [c for c in caps if c in CAPABILITIES]
    if known and len(known) != len(caps):
        bad = ", ".join(c for c in caps if c not in CAPABILITIES)
        raise argparse.ArgumentTypeError(f"unknown capability {bad} in {text!r} (known: {', '.join(CAPABILITIES)})")
    if not known:  # no capability list: the whole text is the id; guess from it, as the probe does
        model_id, known = text, capabilities_by_name(text)
    if not model_id:
        raise argparse.ArgumentTypeError(f"{text!r} names no model; use ID or ID:cap1,cap2")
    return ModelChoice(model_id, tuple(dict.fromkeys(known)))


def parse_default(text: str) -> tuple[str, str | None]:
    """``CAP=MODEL`` (route CAP to this provider's MODEL) or ``CAP`` (to this provider's own choice)."""
    cap, _, model = text.partition("=")
    cap, model = cap.strip(), model.strip()
    if cap not in CAPABILITIES:
        raise argparse.ArgumentTypeError(f"unknown capability {cap!r} in {text!r} (known: {', '.join(CAPABILITIES)})")
    return cap, model or None


def check_name(name: str) -> str:
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise CommandRefused(f"invalid provider name {name!r}: use 1-32 lowercase letters, digits, "
                             "'-' or '_', starting with a letter")
    return name


def check_url(url: str) -> str:
    """An http(s) URL with a host, without a trailing slash; refused with the reason otherwise."""
    fix = f"write the full URL, e.g. {' or '.join(spec.default_base_url for spec in KINDS.values())}"
    try:  # yarl: the URL type aiohttp, the workers' client, builds every provider request from (D57)
        parsed = yarl.URL(url.strip())
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host or re.search(r"\s", url.strip()):
        raise CommandRefused(f"invalid base URL {url!r}: not an http:// or https:// URL; fix: {fix}")
    if parsed.query or parsed.fragment:
        raise CommandRefused(f"invalid base URL {url!r}: it may not carry ?query or #fragment; fix: {fix}")
    return url.strip().rstrip("/")


@dataclass
class ProviderEdit:
    """What to set on one provider; None and empty mean "leave as it is"."""

    name: str
    kind: str | None = None
    base_url: str | None = None
    priority: int | None = None
    secret: dict[str, str] | None = None  # the reference: {"env": VAR} or {"file": PATH}
    models: list[ModelChoice] = field(default_factory=list)  # added, or replacing the same id
    replace_models: bool = False  # the model list becomes exactly ``models`` (discovery)
    drop_models: list[str] = field(default_factory=list)
    defaults: list[tuple[str, str | None]] = field(default_factory=list)


def check_capabilities(kind: str, models: list[ModelChoice]) -> None:
    """Refuse a capability this kind of provider cannot serve (the models alone would only warn)."""
    for model in models:
        extra = [c for c in model.capabilities if c not in KIND_CAPABILITIES[kind]]
        if extra:
            raise CommandRefused(f"model {model.id!r}: a {kind} provider cannot do {', '.join(extra)}; "
                                 f"fix: use {', '.join(sorted(KIND_CAPABILITIES[kind]))}")


def _merge_models(entry: dict[str, Any], edit: ProviderEdit) -> None:
    listed = [m for m in entry.get("models", []) if isinstance(m, dict)]
    by_id = {m.get("id"): m for m in listed}
    current: list[Any] = [] if edit.replace_models else listed
    for choice in edit.models:
        # Keys set by hand (priority, score) survive a model being listed again.
        item = {**by_id.get(choice.id, {}), "id": choice.id, "capabilities": list(choice.capabilities)}
        index = next((i for i, m in enumerate(current) if isinstance(m, dict) and m.get("id") == choice.id), None)
        if index is None:
            current.append(item)
        else:
            current[index] = {**current[index], **item}  # keeps priority/score set by hand
    missing = [m for m in edit.drop_models if not any(isinstance(x, dict) and x.get("id") == m for x in current)]
    if missing:
        raise CommandRefused(f"provider {edit.name!r} lists no model {', '.join(map(repr, missing))}; "
                             "see `llm-caller config providers list`")
    entry["models"] = [m for m in current if not (isinstance(m, dict) and m.get("id") in edit.drop_models)]


def apply_edit(body: dict[str, Any], edit: ProviderEdit) -> dict[str, Any]:
    """New providers.json content with ``edit`` applied; ``body`` is left untouched."""
    new = copy.deepcopy(body)
    providers = new.setdefault("providers", {})
    entry = providers.setdefault(edit.name, {})
    for key, value in (("kind", edit.kind), ("base_url", edit.base_url), ("priority", edit.priority),
                       ("secret", edit.secret)):
        if value is not None:
            entry[key] = value
    kind = str(entry.get("kind"))
    if kind in KIND_CAPABILITIES:
        check_capabilities(kind, edit.models)
    if edit.models or edit.replace_models or edit.drop_models or "models" not in entry:
        _merge_models(entry, edit)
    for cap, model in edit.defaults:
        new.setdefault("defaults", {})[cap] = {"provider": edit.name, **({"model": model} if model else {})}
    return new


def drop_provider(body: dict[str, Any], name: str) -> tuple[dict[str, Any], list[str]]:
    """Content without provider ``name`` nor any route to it; also the routes dropped, for the summary."""
    new = copy.deepcopy(body)
    new.get("providers", {}).pop(name, None)
    dropped: list[str] = []
    for section in ("defaults", "aliases"):
        routes = new.get(section, {})
        for key in [k for k, t in routes.items() if isinstance(t, dict) and t.get("provider") == name]:
            dropped.append(f"{section}.{key}")
            del routes[key]
    for cap, targets in new.get("fallbacks", {}).items():
        kept = [t for t in targets if not (isinstance(t, dict) and t.get("provider") == name)]
        if len(kept) != len(targets):
            dropped.append(f"fallbacks.{cap}")
            new["fallbacks"][cap] = kept
    return new, dropped

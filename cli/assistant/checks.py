"""Deciding whether and how to check a provider before saving it, shared by flags and menu.

The check runs with the key about to be saved (just typed, in the named variable, or in
the existing key file), because "the URL answers" alone would not catch a pasted-wrong
key, the most common mistake.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cli.assistant.credentials import PendingSecret, read_key_file
from cli.assistant.probe import FoundModel, ProbeResult, guess_capabilities, probe
from cli.assistant.spec import ModelChoice
from cli.assistant.ui import Ui
from cli.options import CommandRefused
from shared.kind_spec import KindOptions
from workers.providers.registry import KINDS

__all__ = ["KEY_KINDS", "check_provider", "discover", "key_for_check", "models_from"]

# Kinds whose provider refuses calls without a key (their declarations say so).
KEY_KINDS = frozenset(name for name, spec in KINDS.items() if spec.needs_key)
_NO_CHECK_FIX = "correct it, or pass --no-probe to save without checking"


def key_for_check(secret: Any, pending: PendingSecret | None) -> tuple[str | None, str]:
    """The key a check should send, or None and why there is none."""
    if pending is not None:
        return pending.value, ""
    if not isinstance(secret, dict):
        return None, "no key is configured"
    if "env" in secret:
        value = os.environ.get(str(secret["env"]), "").strip()
        return (value or None), f"${secret['env']} is not set in this shell"
    return read_key_file(Path(str(secret.get("file")))), f"the key file {secret.get('file')} cannot be read"


def check_provider(ui: Ui, kind: str, base_url: str, key: tuple[str | None, str], *,
                   wanted: bool | None, options: KindOptions | None = None) -> bool:
    """Probe unless told not to (with the provider's validated kind ``options``); False when it
    failed and the operator chose not to save."""
    if wanted is False:
        return True
    value, why_missing = key
    if kind in KEY_KINDS and value is None:
        if wanted:
            raise CommandRefused(f"cannot check the provider: {why_missing}; fix: export it, "
                                 "or pass --no-probe to save without checking")
        ui.warn(f"not checked: {why_missing}")
        return True
    result = probe(kind, base_url, value, options=options)
    return _report(ui, result)


def _report(ui: Ui, result: ProbeResult) -> bool:
    if result.ok:
        ui.say(f"check passed: {result.message}")
        return True
    return ui.accept_failure(f"check failed: {result.message}", _NO_CHECK_FIX)


def discover(ui: Ui, kind: str, base_url: str) -> tuple[FoundModel, ...] | None:
    """A discovering server's models (loaded or not); None when it could not be asked and the operator stopped."""
    title = KINDS[kind].title
    result = probe(kind, base_url, None)
    if not result.ok:
        accepted = ui.accept_failure(f"cannot discover models: {result.message}",
                                     f"start {title}'s server, or leave out --discover")
        return () if accepted else None
    ui.say(f"discovered: {result.message}")
    if not any(m.loaded for m in result.models):
        ui.warn(f"no model is loaded in {title}; load one before routing calls to it")
    return result.models


def models_from(kind: str, found: tuple[FoundModel, ...], *, loaded_only: bool = True) -> list[ModelChoice]:
    choices = []
    for model in found:
        caps = guess_capabilities(kind, model)
        if caps and (model.loaded or not loaded_only):
            choices.append(ModelChoice(model.id, tuple(caps)))
    return choices

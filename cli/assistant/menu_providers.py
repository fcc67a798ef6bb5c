"""The menu's provider flows: the same changes as ``config providers ...``, asked for one by one.

Answers become a ``ProviderEdit`` and go through the same save pipeline as the flag
commands, so the menu cannot write anything the flags could not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import questionary

from cli.assistant.checks import KEY_KINDS, key_for_check
from cli.assistant.credentials import PendingSecret, check_key
from cli.assistant.listing import provider_rows, render
from cli.assistant.probe import FoundModel, guess_capabilities, probe
from cli.assistant.prompts import Back, MenuUi, ask, validator
from cli.assistant.providers import load_body, note_kept_key, secret_ref
from cli.assistant.spec import (
    DEFAULT_BASE_URLS,
    ModelChoice,
    ProviderEdit,
    apply_edit,
    check_capabilities,
    check_name,
    check_url,
    drop_provider,
    parse_model,
)
from cli.assistant.store import Change, save, target_for
from cli.options import CommandRefused
from shared.config import KIND_CAPABILITIES
from shared.models import CAPABILITIES
from shared.settings import Settings
from workers.providers.registry import KINDS

__all__ = ["add_provider", "list_providers", "remove_provider", "update_provider"]

_KEEP_KEY, _TYPE_KEY, _ENV_KEY = ("Keep the current key", "Type or paste it (hidden; kept in a 0600 key file)",
                                  "Read it from an environment variable")


def list_providers(settings: Settings, ui: MenuUi) -> None:
    _, body = load_body(settings)
    render(provider_rows(body), as_json=False, file=settings.providers_file)


def _pick_provider(body: dict[str, Any], question: str) -> str:
    names = list(body["providers"])
    if not names:
        raise CommandRefused("no providers yet; add one first")
    return str(ask(questionary.select(question, choices=names)))


def _new_name(text: str, taken: set[str]) -> None:
    check_name(text)
    if text in taken:
        raise CommandRefused(f"{text!r} is taken; choose another name")


def _ask_key(settings: Settings, kind: str, name: str, current: Any) -> tuple[dict[str, str] | None,
                                                                               PendingSecret | None]:
    if kind not in KEY_KINDS:
        return None, None
    choices = ([_KEEP_KEY] if current else []) + [_TYPE_KEY, _ENV_KEY]
    how = ask(questionary.select("API key:", choices=choices))
    if how == _KEEP_KEY:
        return None, None
    if how == _ENV_KEY:
        var = ask(questionary.text("Variable name:", default=KINDS[kind].key_variable(),
                                   validate=validator(lambda v: secret_ref(settings, name, env=v, key=None))))
        return secret_ref(settings, name, env=str(var), key=None)
    key = ask(questionary.password("Key (input hidden):", validate=validator(check_key)))
    return secret_ref(settings, name, env=None, key=check_key(str(key)))


def _check(ui: MenuUi, kind: str, base_url: str, key: tuple[str | None, str]) -> tuple[FoundModel, ...] | None:
    """The provider's models, or None when not checked (or the check failed and the operator went on)."""
    if not ask(questionary.confirm("Check the provider now? (lists its models; free, no completion is sent)",
                                   default=True)):
        return None
    value, why_missing = key
    if kind in KEY_KINDS and value is None:
        ui.warn(f"not checked: {why_missing}")
        return None
    result = probe(kind, base_url, value)
    if result.ok:
        ui.say(f"check passed: {result.message}")
        return result.models
    if not ui.accept_failure(f"check failed: {result.message}", ""):
        raise Back
    return None


def _pick_found(kind: str, found: tuple[FoundModel, ...], current: dict[str, list[str]]) -> list[ModelChoice]:
    guessed = {m.id: current.get(m.id) or guess_capabilities(kind, m) for m in found}
    choices = [
        questionary.Choice(f"{m.id}  [{','.join(guessed[m.id])}]{'' if m.loaded else '  (not loaded)'}", value=m.id,
                           checked=m.id in current or (not current and KINDS[kind].discovers_models and m.loaded))
        for m in found if guessed[m.id]
    ]
    # Models configured earlier but not listed now stay offered, so an update never drops one silently.
    choices += [questionary.Choice(f"{mid}  [{','.join(caps)}]  (not listed by the server)", value=mid, checked=True)
                for mid, caps in current.items() if mid not in guessed]
    picked = ask(questionary.checkbox("Models to offer (space toggles, enter confirms):", choices=choices,
                                      validate=lambda s: bool(s) or "pick at least one"))
    caps_of = {**current, **guessed}
    if ask(questionary.confirm("Use the capabilities shown in [brackets]?", default=True)):
        return [ModelChoice(mid, tuple(caps_of[mid])) for mid in picked]
    return [_ask_capabilities(kind, mid, caps_of[mid]) for mid in picked]


def _ask_capabilities(kind: str, model_id: str, proposed: list[str]) -> ModelChoice:
    choices = [questionary.Choice(c, checked=c in proposed) for c in CAPABILITIES if c in KIND_CAPABILITIES[kind]]
    caps = ask(questionary.checkbox(f"Capabilities of {model_id}:", choices=choices,
                                    validate=lambda s: bool(s) or "pick at least one"))
    return ModelChoice(model_id, tuple(caps))


def _models_check(kind: str) -> Callable[[str], None]:
    def check(text: str) -> None:
        models = [parse_model(part) for part in text.split()]
        if not models and not KINDS[kind].discovers_models:
            raise CommandRefused("name at least one model")
        check_capabilities(kind, models)

    return check


def _type_models(kind: str, current: dict[str, list[str]]) -> list[ModelChoice]:
    spec = KINDS[kind]
    hint = f"empty: use what {spec.title} has loaded" if spec.discovers_models else "e.g. my-model other-model:embed"
    text = ask(questionary.text(f"Models, space-separated, ID or ID:caps ({hint}):",
                                default=" ".join(f"{m}:{','.join(c)}" for m, c in current.items()),
                                validate=validator(_models_check(kind))))
    return [parse_model(part) for part in str(text).split()]


def _ask_models(ui: MenuUi, kind: str, base_url: str, key: tuple[str | None, str],
                current_models: list[Any]) -> list[ModelChoice]:
    current = {str(m["id"]): list(m.get("capabilities", [])) for m in current_models if isinstance(m, dict)}
    found = _check(ui, kind, base_url, key)
    return _pick_found(kind, found, current) if found else _type_models(kind, current)


def _ask_defaults(body: dict[str, Any], name: str, models: list[ModelChoice]) -> list[tuple[str, str | None]]:
    routes = body.get("defaults", {})
    chosen: list[tuple[str, str | None]] = []
    for cap in CAPABILITIES:
        ids = [m.id for m in models if cap in m.capabilities]
        if not ids:
            continue
        now = routes.get(cap)
        keep = f"keep {now['provider']}/{now.get('model') or '(its choice)'}" if now else f"no default for {cap}"
        # With no default yet, this provider comes first: a first provider should just work.
        choices = [keep, *ids] if now else [*ids, keep]
        pick = ask(questionary.select(f"Default model for {cap} calls that name no provider:", choices=choices))
        if pick != keep:
            chosen.append((cap, str(pick)))
    return chosen


def _save(settings: Settings, ui: MenuUi, before: dict[str, Any] | None, after: dict[str, Any], event: str,
          name: str, pending: PendingSecret | None) -> bool:
    kind = after["providers"][name]["kind"] if name in after["providers"] else None
    change = Change(target_for(settings, "providers"), before, after, event=event,
                    fields={"provider": name, "kind": kind, "via": "menu"}, secret=pending)
    return save(change, ui, settings)


def add_provider(settings: Settings, ui: MenuUi) -> None:
    before, body = load_body(settings)
    taken = set(body["providers"])
    kind = str(ask(questionary.select("Kind of provider:", choices=list(DEFAULT_BASE_URLS))))
    name = str(ask(questionary.text("Name:", default="" if kind in taken else kind,
                                    validate=validator(lambda t: _new_name(t, taken)))))
    base_url = check_url(str(ask(questionary.text("Base URL:", default=DEFAULT_BASE_URLS[kind],
                                                  validate=validator(check_url)))))
    ref, pending = _ask_key(settings, kind, name, None)
    models = _ask_models(ui, kind, base_url, key_for_check(ref, pending), [])
    edit = ProviderEdit(name, kind=kind, base_url=base_url, secret=ref, models=models, replace_models=True,
                        defaults=_ask_defaults(body, name, models))
    _save(settings, ui, before, apply_edit(body, edit), "provider_added", name, pending)


def update_provider(settings: Settings, ui: MenuUi) -> None:
    before, body = load_body(settings)
    name = _pick_provider(body, "Provider to update:")
    entry = body["providers"][name]
    base_url = check_url(str(ask(questionary.text("Base URL:", default=str(entry["base_url"]),
                                                  validate=validator(check_url)))))
    ref, pending = _ask_key(settings, entry["kind"], name, entry.get("secret"))
    key = key_for_check(ref or entry.get("secret"), pending)
    models = _ask_models(ui, entry["kind"], base_url, key, entry.get("models", []))
    edit = ProviderEdit(name, base_url=base_url, secret=ref, models=models, replace_models=True,
                        defaults=_ask_defaults(body, name, models))
    _save(settings, ui, before, apply_edit(body, edit), "provider_updated", name, pending)


def remove_provider(settings: Settings, ui: MenuUi) -> None:
    before, body = load_body(settings)
    name = _pick_provider(body, "Provider to remove:")
    entry = body["providers"][name]
    after, dropped = drop_provider(body, name)
    if dropped:
        ui.say(f"routes to {name!r} go too: {', '.join(dropped)}")
    change = Change(target_for(settings, "providers"), before, after, event="provider_removed",
                    fields={"provider": name, "kind": entry.get("kind"), "via": "menu"})
    if save(change, ui, settings):
        note_kept_key(ui, settings, name, entry)

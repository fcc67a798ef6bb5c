"""``llm-caller config providers list | add | update | remove``: providers from flags, no prompts.

Each command reads providers.json (or starts from nothing), builds the new content with
``spec``, checks the provider if asked, and hands the result to the save pipeline.
Exit codes follow the other config commands: 2 for anything to correct and retry
(bad flag, duplicate name, invalid result, failed check), 1 when the write itself failed.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from cli.assistant.checks import KEY_KINDS, check_provider, discover, key_for_check, models_from
from cli.assistant.credentials import PendingSecret, key_file_for, read_key_from_stdin
from cli.assistant.listing import provider_rows, render
from cli.assistant.spec import ProviderEdit, apply_edit, check_name, check_url, drop_provider
from cli.assistant.store import Change, body_of, read_current, save, target_for, validate
from cli.assistant.ui import CliUi, Ui
from cli.options import CommandRefused, reporting, resolve_settings
from shared.config import ProviderConfig
from shared.settings import Settings
from workers.providers.registry import KINDS

__all__ = ["add", "list_providers", "load_body", "remove", "secret_ref", "update"]

_ENV_NAME = r"[A-Z_][A-Z0-9_]*"


def load_body(settings: Settings) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The current raw file (None if absent) and a working copy with a ``providers`` map."""
    before = read_current(target_for(settings, "providers"))
    body = body_of(before)
    body.setdefault("providers", {})
    return before, body


def secret_ref(settings: Settings, name: str, *, env: str | None, key: str | None
               ) -> tuple[dict[str, str] | None, PendingSecret | None]:
    """The reference to store, and the key file to write (when a key was given)."""
    if env is not None:
        if re.fullmatch(_ENV_NAME, env) is None:
            raise CommandRefused(f"invalid variable name {env!r}; fix: use capital letters, digits and '_'")
        return {"env": env}, None
    if key is not None:
        path = key_file_for(settings.config_dir, name)
        return {"file": str(path)}, PendingSecret(path, key)
    return None, None


def _existing(body: dict[str, Any], name: str, *, present: bool) -> dict[str, Any]:
    entry: dict[str, Any] | None = body["providers"].get(name)
    if present and entry is None:
        known = ", ".join(body["providers"]) or "none"
        raise CommandRefused(f"no provider named {name!r} (known: {known}); "
                             f"fix: add it with `llm-caller config providers add {name} ...`")
    if not present and entry is not None:
        raise CommandRefused(f"a provider named {name!r} already exists; fix: choose another name, or change it "
                             f"with `llm-caller config providers update {name} ...`")
    return entry or {}


def _edit_from_args(args: argparse.Namespace, settings: Settings, entry: dict[str, Any]
                    ) -> tuple[ProviderEdit, PendingSecret | None]:
    kind = args.kind or entry.get("kind")
    key = read_key_from_stdin() if args.secret_stdin else None
    ref, pending = secret_ref(settings, args.name, env=args.secret_env, key=key)
    if not entry and kind in KEY_KINDS and ref is None:
        raise CommandRefused(f"a {kind} provider needs a key; fix: pass --secret-stdin (the key on stdin) "
                             "or --secret-env VAR (an environment variable holding it)")
    edit = ProviderEdit(
        name=args.name, kind=args.kind, priority=args.priority, secret=ref,
        base_url=check_url(args.base_url) if args.base_url else None,
        models=list(args.model or []), drop_models=list(args.drop_model or []), defaults=list(args.default or []),
    )
    return edit, pending


def _discover_into(ui: Ui, edit: ProviderEdit, kind: str, base_url: str) -> None:
    if not KINDS[kind].discovers_models:
        servers = ", ".join(s.title for s in KINDS.values() if s.discovers_models)
        raise CommandRefused(f"--discover asks the server which models it has ({servers}); {edit.name!r} is "
                             f"{kind}; fix: list models with --model ID:caps")
    found = discover(ui, kind, base_url)
    if found is None:
        raise CommandRefused("not saved")
    explicit = {m.id for m in edit.models}
    edit.models = [m for m in models_from(kind, found) if m.id not in explicit] + edit.models
    edit.replace_models = True


def _propose(args: argparse.Namespace, *, creating: bool) -> int:
    settings = resolve_settings(args)
    ui = CliUi(assume_yes=args.yes)
    before, body = load_body(settings)
    entry = _existing(body, check_name(args.name), present=not creating)
    edit, pending = _edit_from_args(args, settings, entry)
    after = apply_edit(body, edit)
    new_entry = after["providers"][args.name]
    if args.discover:
        _discover_into(ui, edit, new_entry["kind"], new_entry["base_url"])
        after = apply_edit(body, edit)
    validate(target_for(settings, "providers"), after)  # before the network: a bad file fails fast
    wanted = False if args.discover and args.probe is None else args.probe
    key = key_for_check(new_entry.get("secret"), pending)
    options = ProviderConfig.model_validate(new_entry, strict=True).options  # valid: checked just above
    if not check_provider(ui, new_entry["kind"], new_entry["base_url"], key, wanted=wanted, options=options):
        raise CommandRefused("not saved")
    change = Change(target_for(settings, "providers"), before, after,
                    event="provider_added" if creating else "provider_updated",
                    fields={"provider": args.name, "kind": new_entry["kind"]}, secret=pending)
    save(change, ui, settings)
    return 0


@reporting
def add(args: argparse.Namespace) -> int:
    return _propose(args, creating=True)


@reporting
def update(args: argparse.Namespace) -> int:
    return _propose(args, creating=False)


@reporting
def remove(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    ui = CliUi(assume_yes=args.yes)
    before, body = load_body(settings)
    entry = _existing(body, check_name(args.name), present=True)
    after, dropped = drop_provider(body, args.name)
    if dropped:
        ui.say(f"routes to {args.name!r} go too: {', '.join(dropped)}")
    change = Change(target_for(settings, "providers"), before, after, event="provider_removed",
                    fields={"provider": args.name, "kind": entry.get("kind")})
    if save(change, ui, settings):
        note_kept_key(ui, settings, args.name, entry)
    return 0


def note_kept_key(ui: Ui, settings: Settings, name: str, entry: dict[str, Any]) -> None:
    """Say that a removed provider's key file stays: a rollback of the removal needs it back."""
    secret = entry.get("secret")
    if isinstance(secret, dict) and secret.get("file") == str(key_file_for(settings.config_dir, name)):
        ui.say(f"its key file {secret['file']} was kept, so a rollback still works; delete it when done")


@reporting
def list_providers(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    _, body = load_body(settings)
    render(provider_rows(body), as_json=args.json, file=settings.providers_file)
    return 0

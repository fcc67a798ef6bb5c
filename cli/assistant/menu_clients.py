"""The menu's client flows: list, add, change limits, rotate, disable, enable, remove.

Entries are built with the same helpers as ``llm-caller clients ...`` and saved through
the assistant's pipeline (summary, confirmation, backup, audit). A new token is shown
once, after the save succeeded: showing it before would hand out a token that a failed
write never registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import questionary

from cli.assistant.prompts import MenuUi, ask, validator
from cli.assistant.store import Change, body_of, read_current, save, target_for
from cli.clients_cmd import (
    describe_limits,
    parse_concurrency,
    parse_duration,
    parse_providers,
    parse_rate,
    parse_tools,
    print_table,
    show_token,
    valid_name,
)
from cli.options import CommandRefused
from shared.config import ClientEntry
from shared.policies import ClientLimits
from shared.settings import Settings
from shared.tokens import hash_token, new_token

__all__ = ["add_client", "list_clients", "remove_client", "rotate_client", "set_client_disabled", "set_client_limits"]


def _load(settings: Settings) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    before = read_current(target_for(settings, "clients"))
    body = body_of(before)
    body.setdefault("clients", {})
    return before, body


def _save(settings: Settings, ui: MenuUi, before: dict[str, Any] | None, after: dict[str, Any], event: str,
          name: str) -> bool:
    change = Change(target_for(settings, "clients"), before, after, event=event, fields={"client": name, "via": "menu"})
    return save(change, ui, settings)


def _pick(body: dict[str, Any], question: str, *, disabled: bool | None = None) -> str:
    names = [n for n, e in body["clients"].items() if disabled is None or bool(e.get("disabled")) == disabled]
    if not names:
        raise CommandRefused("no client to choose from")
    return str(ask(questionary.select(question, choices=names)))


def list_clients(settings: Settings, ui: MenuUi) -> None:
    _, body = _load(settings)
    clients = {name: ClientEntry.model_validate(entry) for name, entry in body["clients"].items()}
    if clients:
        print_table(clients)
    else:
        ui.say("no clients yet")


def _new_name(text: str, taken: dict[str, Any]) -> None:
    if not valid_name(text):
        raise CommandRefused("use 1-32 lowercase letters, digits, '-' or '_', starting with a letter")
    if text in taken:
        raise CommandRefused(f"{text!r} is taken; choose another name, or rotate its token")


def add_client(settings: Settings, ui: MenuUi) -> None:
    before, body = _load(settings)
    name = str(ask(questionary.text("Client name:", validate=validator(lambda t: _new_name(t, body["clients"])))))
    tools = parse_tools(str(ask(questionary.text("Tools it may call (comma-separated, * for all):", default="*",
                                                validate=validator(parse_tools)))))
    providers = parse_providers(str(ask(questionary.text("Providers it may use (comma-separated, * for all):",
                                                        default="*", validate=validator(parse_providers)))))
    expiry = str(ask(questionary.text("Expires in (e.g. 30d, 12h; empty: never):",
                                      validate=validator(lambda t: parse_duration(t) if t.strip() else None))))
    limits = _ask_limits(ClientLimits())
    token, now = new_token(), int(time.time())
    entry = ClientEntry.model_validate({
        "token_sha256": hash_token(token), "tools": tools, "providers": providers, "created_at": now,
        "expires_at": now + parse_duration(expiry) if expiry.strip() else None, "limits": limits.model_dump(),
    })
    after = {**body, "clients": {**body["clients"], name: entry.model_dump(mode="json")}}
    if _save(settings, ui, before, after, "client_added", name):
        show_token(name, token, entry, verb="added", print_token=False)


def _ask_limit(question: str, current: int | None, parse: Callable[[str], int]) -> int | None:
    """One limit: a number, or empty / off for none. The current value is the default answer."""
    answer = str(ask(questionary.text(question, default=str(current) if current is not None else "",
                                      validate=validator(lambda t: parse(t) if t.strip() else None))))
    return (parse(answer) or None) if answer.strip() else None


def _ask_limits(current: ClientLimits) -> ClientLimits:
    return ClientLimits(
        requests_per_min=_ask_limit("Calls per minute at most (empty: no limit):", current.requests_per_min,
                                    parse_rate),
        max_concurrency=_ask_limit("Calls in flight at once at most (empty: no limit):", current.max_concurrency,
                                   parse_concurrency),
    )


def set_client_limits(settings: Settings, ui: MenuUi) -> None:
    before, body = _load(settings)
    name = _pick(body, "Client whose limits to change:")
    current = ClientEntry.model_validate(body["clients"][name]).limits
    ui.say(f"{name}: {describe_limits(current)}")
    limits = _ask_limits(current)
    if limits == current:
        ui.say("no change; nothing was saved")
        return
    after = body_of(body)
    after["clients"][name]["limits"] = limits.model_dump()
    _save(settings, ui, before, after, "client_updated", name)


def rotate_client(settings: Settings, ui: MenuUi) -> None:
    before, body = _load(settings)
    name = _pick(body, "Client to give a new token:")
    token = new_token()
    after = body_of(body)
    after["clients"][name]["token_sha256"] = hash_token(token)
    if _save(settings, ui, before, after, "client_rotated", name):
        entry = ClientEntry.model_validate(after["clients"][name])
        show_token(name, token, entry, verb="rotated", print_token=False)


def set_client_disabled(settings: Settings, ui: MenuUi, disabled: bool) -> None:
    before, body = _load(settings)
    name = _pick(body, f"Client to {'disable' if disabled else 'enable'}:", disabled=not disabled)
    after = body_of(body)
    after["clients"][name]["disabled"] = disabled
    if disabled:  # ends its session tokens for good (shared.session_tokens.session_binding)
        after["clients"][name]["session_generation"] = int(after["clients"][name].get("session_generation", 0)) + 1
    _save(settings, ui, before, after, "client_disabled" if disabled else "client_enabled", name)


def remove_client(settings: Settings, ui: MenuUi) -> None:
    before, body = _load(settings)
    name = _pick(body, "Client to remove (its token stops working):")
    after = body_of(body)
    del after["clients"][name]
    _save(settings, ui, before, after, "client_removed", name)

"""``llm-caller config`` on a terminal: the interactive configuration assistant.

A loop over one menu. Each action asks its questions, then runs the shared save
pipeline; whatever goes wrong in one action (a refused value, an unwritable folder, a
broken file, Ctrl-C) is reported in one line and the menu comes back, so an operator
can always reach "Roll back a change" to repair a broken file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import questionary

from cli.assistant import menu_clients as clients
from cli.assistant import menu_providers as providers
from cli.assistant.prompts import Back, MenuUi, ask
from cli.assistant.rollback import backups, describe, restore
from cli.assistant.store import target_for
from cli.assistant.ui import on_terminal
from cli.options import CommandRefused, resolve_settings
from shared.config import ConfigError
from shared.files import FileWriteError
from shared.settings import Settings

__all__ = ["open_menu"]

Action = Callable[[Settings, MenuUi], None]


def _rollback(settings: Settings, ui: MenuUi) -> None:
    key = ask(questionary.select("Which file?", choices=[
        questionary.Choice("providers.json", value="providers"),
        questionary.Choice("client-registry.json", value="clients"),
    ]))
    target = target_for(settings, key)
    found = backups(target)
    if not found:
        raise CommandRefused(f"no backups of {target.path.name} yet")
    choices = [questionary.Choice(f"{b.when}  {describe(target, b)}  ({b.name})", value=b) for b in found[:20]]
    chosen = ask(questionary.select("Restore which version? (newest first)", choices=choices))
    restore(settings, ui, target, chosen)


ACTIONS: dict[str, Action] = {
    "List providers": providers.list_providers,
    "Add a provider": providers.add_provider,
    "Update a provider": providers.update_provider,
    "Remove a provider": providers.remove_provider,
    "List clients": clients.list_clients,
    "Add a client": clients.add_client,
    "Change a client's limits": clients.set_client_limits,
    "Rotate a client's token": clients.rotate_client,
    "Disable a client": lambda s, ui: clients.set_client_disabled(s, ui, True),
    "Enable a client": lambda s, ui: clients.set_client_disabled(s, ui, False),
    "Remove a client": clients.remove_client,
    "Roll back a change": _rollback,
}
_QUIT = "Quit"


def _run_one(action: Action, settings: Settings, ui: MenuUi) -> None:
    try:
        action(settings, ui)
    except Back:
        print("cancelled; nothing was saved")
    except (CommandRefused, ConfigError, FileWriteError) as exc:
        print(f"llm-caller: {exc}")


def open_menu(args: argparse.Namespace) -> int:
    if not on_terminal():
        print("llm-caller: the assistant needs a terminal; for scripts use `llm-caller config providers ...`, "
              "`config rollback` or `clients ...` (see `llm-caller config --help`)", file=sys.stderr)
        return 2
    settings = resolve_settings(args)
    ui = MenuUi()
    print(f"LLM Caller configuration assistant: {settings.config_dir} (Ctrl-C cancels a question)")
    while True:
        choice = questionary.select("What do you want to do?", choices=[*ACTIONS, _QUIT]).ask()
        if choice is None or choice == _QUIT:
            return 0
        _run_one(ACTIONS[choice], settings, ui)

"""``llm-caller config`` (the assistant), ``config providers ...`` and ``config rollback``.

The handlers live in ``cli/assistant/``; this module only declares the command line.
The menu is imported when called, so other commands do not pay for the prompt library.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.assistant import providers
from cli.assistant.rollback import rollback as rollback_handler
from cli.assistant.spec import parse_default, parse_model
from cli.config_cmd import add_action_config_dir, config_actions
from workers.providers.registry import KINDS

__all__ = ["register"]

# The kinds whose servers list their own models (--discover applies to them).
_DISCOVERING = ", ".join(spec.title for spec in KINDS.values() if spec.discovers_models) or "no registered kind"


def _menu(args: argparse.Namespace) -> int:
    from cli.assistant.menu import open_menu

    return open_menu(args)


def _yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="save without asking for confirmation")


def _provider_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    parser.add_argument("name", metavar="NAME", help="provider name (lowercase letters, digits, '-', '_')")
    parser.add_argument("--kind", choices=tuple(KINDS), required=creating, help="wire format the provider speaks")
    parser.add_argument("--base-url", metavar="URL", required=creating,
                        help=f"e.g. {', '.join(spec.default_base_url for spec in KINDS.values())}")
    parser.add_argument("--model", type=parse_model, action="append", metavar="ID[:CAPS]",
                        help="a model and its capabilities, e.g. gpt-4o:chat,chatStream (default: embed for ids "
                             "containing 'embed', else chat,chatStream); "
                             "repeat for more; replaces a listed model of the same id")
    parser.add_argument("--drop-model", action="append", metavar="ID", help="remove a listed model; repeatable")
    parser.add_argument("--discover", action="store_true",
                        help=f"{_DISCOVERING}: list the models loaded on the server and use exactly those "
                        "(plus --model)")
    parser.add_argument("--default", type=parse_default, action="append", metavar="CAP[=MODEL]",
                        help="route calls naming no provider for CAP (chat, chatStream, embed) here; repeatable")
    parser.add_argument("--priority", type=int, metavar="N", help="0-1000, lower is preferred (default: 100)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", metavar="VAR", help="reference the key by environment variable name")
    secret.add_argument("--secret-stdin", action="store_true",
                        help="read the key from stdin (hidden prompt on a terminal) into a 0600 key file")
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="list the provider's models before saving (free; default: when a key is at hand)")
    _yes(parser)
    add_action_config_dir(parser)


def _providers(actions: Any) -> None:
    group = actions.add_parser("providers", help="list, add, update or remove providers (no prompts)",
                               description="Manage providers.json without editing it by hand.")
    verbs = group.add_subparsers(dest="providers_action", required=True, metavar="ACTION")

    listing = verbs.add_parser("list", help="show configured providers, their models and key status")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    add_action_config_dir(listing)
    listing.set_defaults(handler=providers.list_providers)

    add = verbs.add_parser("add", help="add a provider")
    _provider_options(add, creating=True)
    add.set_defaults(handler=providers.add)

    update = verbs.add_parser("update", help="change a provider; only the options given change")
    _provider_options(update, creating=False)
    update.set_defaults(handler=providers.update)

    remove = verbs.add_parser("remove", help="remove a provider and every route to it")
    remove.add_argument("name", metavar="NAME")
    _yes(remove)
    add_action_config_dir(remove)
    remove.set_defaults(handler=providers.remove)


def _rollback(actions: Any) -> None:
    rollback = actions.add_parser("rollback", help="restore a dated backup of providers.json or client-registry.json",
                                  description="Without --to, restore the newest backup of --file (default providers).")
    rollback.add_argument("--list", action="store_true", help="show the backups, newest first; change nothing")
    rollback.add_argument("--json", action="store_true", help="with --list: print a JSON array")
    rollback.add_argument("--to", metavar="BACKUP_NAME", help="the backup to restore, as --list names it")
    rollback.add_argument("--file", choices=("providers", "clients"), help="which file (default: providers)")
    _yes(rollback)
    add_action_config_dir(rollback)
    rollback.set_defaults(handler=rollback_handler)


def register(sub: Any) -> None:
    sub.choices["config"].set_defaults(handler=_menu)
    actions = config_actions(sub)
    _providers(actions)
    _rollback(actions)

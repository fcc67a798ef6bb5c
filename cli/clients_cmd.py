"""``llm-caller clients add | list | update | remove | disable | enable | rotate``: the client registry.

A token exists in exactly two places: the operator's terminal, once, and the client's
own configuration. client-registry.json keeps only its SHA-256. Every change is
validated as a whole registry before it is written (atomically, with a dated backup),
so a command can never leave a file the gateway would refuse, and recorded in the
audit trail (names and grants, never a token). A running gateway re-reads the file when
it changes, so changes apply without a restart.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cli.assistant.journal import record
from cli.config_folder import STARTER_PROVIDERS, fill_in
from cli.options import CommandRefused, Handler, add_config_dir, reporting, resolve_settings
from shared.config import _NAME as NAME_PATTERN  # the one definition of a valid name
from shared.config import (
    ClientEntry,
    ClientRegistry,
    ConfigError,
    load_client_registry,
    load_providers,
)
from shared.files import exclusive, existing_mode, write_json_atomic
from shared.policies import ClientLimits
from shared.settings import Settings
from shared.tokens import hash_token, new_token
from shared.tool_names import TOOL_NAMES

__all__ = ["describe_limits", "parse_concurrency", "parse_duration", "parse_providers", "parse_rate", "parse_tools",
           "print_table", "register", "show_token", "valid_name"]

_DURATION = re.compile(r"^([1-9][0-9]{0,5})([dhm])$")
_UNIT_S = {"d": 86_400, "h": 3_600, "m": 60}
_SCHEMA_HINT = "./schema/client-registry.schema.json"
# Hashes alone are useless to an attacker, but nobody but the operator needs to read them.
_NEW_REGISTRY_MODE = 0o600
# What a limit option takes to remove the limit; parsed as NO_LIMIT.
_OFF_WORDS = ("off", "none")
NO_LIMIT = 0
_MAX_CONCURRENCY = 1024  # as ClientLimits allows


# ---- argument types -------------------------------------------------------------------


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use a number and d, h or m, e.g. 30d")
    return int(match[1]) * _UNIT_S[match[2]]


def _grants(text: str, allowed: Callable[[str], bool], what: str) -> list[str]:
    items = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not items:
        raise argparse.ArgumentTypeError(f"give at least one {what}, or * for all")
    if "*" in items:
        return ["*"]  # everything already includes whatever else was listed
    bad = [item for item in items if not allowed(item)]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(bad)}")
    return items


def valid_name(name: str) -> bool:
    # fullmatch: with re.match, "$" would also accept a name followed by a newline.
    return re.fullmatch(NAME_PATTERN, name) is not None


def parse_tools(text: str) -> list[str]:
    return _grants(text, lambda t: t in TOOL_NAMES, f"tool (known: {', '.join(TOOL_NAMES)})")


def parse_providers(text: str) -> list[str]:
    return _grants(text, valid_name, "provider name")


def parse_models(text: str) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    if not models or any(len(m) > 200 for m in models):
        raise argparse.ArgumentTypeError("give model ids separated by commas, or *")
    return ["*"] if "*" in models else models


def _limit(text: str, what: str, most: int | None) -> int:
    word = text.strip().lower()
    if word in _OFF_WORDS:
        return NO_LIMIT
    top = f" and at most {most}" if most is not None else ""
    if not word.isdigit() or int(word) < 1 or (most is not None and int(word) > most):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid {what}: give a whole number of 1{top}, "
                                         "or off for no limit")
    return int(word)


def parse_rate(text: str) -> int:
    """Calls per minute for ``--requests-per-min``; ``NO_LIMIT`` for off."""
    return _limit(text, "number of calls per minute", None)


def parse_concurrency(text: str) -> int:
    """Concurrent calls for ``--max-concurrency``; ``NO_LIMIT`` for off."""
    return _limit(text, "number of concurrent calls", _MAX_CONCURRENCY)


def _with_limits(limits: ClientLimits, requests_per_min: int | None, max_concurrency: int | None) -> ClientLimits:
    """``limits`` with each given option applied: None keeps a limit, NO_LIMIT removes it."""
    update: dict[str, int | None] = {}
    if requests_per_min is not None:
        update["requests_per_min"] = requests_per_min or None
    if max_concurrency is not None:
        update["max_concurrency"] = max_concurrency or None
    return ClientLimits.model_validate({**limits.model_dump(), **update})


def describe_limits(limits: ClientLimits) -> str:
    parts = []
    if limits.requests_per_min is not None:
        parts.append(f"{limits.requests_per_min}/min")
    if limits.max_concurrency is not None:
        parts.append(f"{limits.max_concurrency} at once")
    return ", ".join(parts) or "none"


# ---- registry file --------------------------------------------------------------------


def _load(file: Path, *, create: bool = False) -> dict[str, ClientEntry]:
    if create and not file.exists():
        return {}
    return dict(load_client_registry(file).clients)


def _save(file: Path, clients: dict[str, ClientEntry]) -> Path | None:
    body = {"clients": {name: entry.model_dump(mode="json") for name, entry in clients.items()}}
    ClientRegistry.model_validate(body, strict=True)  # never write what the gateway would refuse to load
    data: dict[str, Any] = body
    if (file.parent / _SCHEMA_HINT).exists():
        data = {"$schema": _SCHEMA_HINT, **body}  # keeps editor completion working
    file.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(file, data, mode=existing_mode(file, _NEW_REGISTRY_MODE), backup=True)


def _audit(settings: Settings, event: str, name: str, backup: Path | None, **fields: Any) -> None:
    # Names and grants only: the token exists on the operator's screen, never in a record.
    record(settings, event, client=name, file=str(settings.registry_file),
           backup=backup.name if backup else None, **fields)


def _require(clients: dict[str, ClientEntry], name: str, file: Path) -> ClientEntry:
    if name not in clients:
        known = ", ".join(sorted(clients)) or "none"
        raise CommandRefused(f"no client named {name!r} in {file} (known: {known}); "
                             "see `llm-caller clients list`")
    return clients[name]


# ---- output ---------------------------------------------------------------------------


def _when(timestamp: int | None, never: str = "never") -> str:
    if timestamp is None:
        return never
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _status(entry: ClientEntry, now: float) -> str:
    if entry.disabled:
        return "disabled"
    if entry.expires_at is not None and entry.expires_at <= now:
        return "expired"
    return "active"


def show_token(name: str, token: str, entry: ClientEntry, *, verb: str, print_token: bool) -> None:
    if print_token:
        print(token)  # stdout carries the token alone, for TOKEN=$(llm-caller clients ...)
        return
    print(f"{verb} client {name!r} (tools: {','.join(entry.tools)}; providers: {','.join(entry.providers)}; "
          f"limits: {describe_limits(entry.limits)}; expires: {_when(entry.expires_at)})")
    print("token (only its hash is stored, so it will not be shown again; copy it now):")
    print(f"  {token}")


def _check_providers(providers_file: Path, providers: list[str], *, allow_unconfigured: bool) -> None:
    """Refuse provider names that providers.json does not configure (a typo would lock the client out)."""
    if "*" in providers:
        return
    try:
        # A folder without providers.json gets the starter right after this save (fill_in).
        known = sorted(load_providers(providers_file).providers if providers_file.exists()
                       else STARTER_PROVIDERS["providers"])
    except ConfigError as exc:
        if allow_unconfigured:
            return
        raise CommandRefused(f"cannot check --providers against {providers_file}: {exc}; fix the file, "
                             "or pass --allow-unconfigured to grant providers not configured yet") from None
    unknown = [p for p in providers if p not in known]
    if not unknown:
        return
    if not allow_unconfigured:
        raise CommandRefused(f"not configured in {providers_file}: {', '.join(unknown)}; configured providers: "
                             f"{', '.join(known) or 'none'} "
                             "(pass --allow-unconfigured to grant one you will add later)")
    print(f"llm-caller: warning: not configured in {providers_file}: {', '.join(unknown)}; "
          "this client's calls to them will fail until they are added", file=sys.stderr)


# ---- handlers -------------------------------------------------------------------------


@reporting
def _add(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    file = settings.registry_file
    if not valid_name(args.name):
        raise CommandRefused(f"invalid client name {args.name!r}: use 1-32 lowercase letters, digits, "
                             "'-' or '_', starting with a letter")
    with exclusive(file, create_folder=True):
        clients = _load(file, create=True)
        if args.name in clients:
            raise CommandRefused(f"client {args.name!r} already exists in {file}; choose another name, or run "
                                 f"`llm-caller clients rotate {args.name}` for a new token")
        token, now = new_token(), int(time.time())
        entry = ClientEntry.model_validate({
            "token_sha256": hash_token(token),
            "tools": args.tools,
            "providers": args.providers,
            "models": args.models,
            "expires_at": now + args.expires_in if args.expires_in else None,
            "created_at": now,
            "limits": _with_limits(ClientLimits(), args.requests_per_min, args.max_concurrency).model_dump(),
        })
        _check_providers(settings.providers_file, entry.providers,
                         allow_unconfigured=args.allow_unconfigured)
        backup = _save(file, {**clients, args.name: entry})
        _audit(settings, "client_added", args.name, backup, tools=entry.tools, providers=entry.providers,
               expires_at=entry.expires_at, limits=entry.limits.model_dump())
    for path in fill_in(settings):
        print(f"llm-caller: also wrote {path} (it was missing; a config folder needs all of its files)",
              file=sys.stderr)
    show_token(args.name, token, entry, verb="added", print_token=args.print_token)
    return 0


@reporting
def _list(args: argparse.Namespace) -> int:
    file = resolve_settings(args).registry_file
    clients = _load(file)
    rows = [
        {"name": name, "tools": e.tools, "providers": e.providers, "limits": e.limits.model_dump(),
         "disabled": e.disabled, "expires_at": e.expires_at, "created_at": e.created_at}
        for name, e in sorted(clients.items())
    ]
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"no clients in {file}; add one with `llm-caller clients add NAME`")
    else:
        print_table(clients)
    return 0


def print_table(clients: dict[str, ClientEntry]) -> None:
    now = time.time()
    table = [("NAME", "TOOLS", "PROVIDERS", "LIMITS", "STATUS", "EXPIRES", "CREATED")]
    for name, e in sorted(clients.items()):
        table.append((name, ",".join(e.tools), ",".join(e.providers), describe_limits(e.limits), _status(e, now),
                      _when(e.expires_at), _when(e.created_at, never="-")))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@reporting
def _update(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    file = settings.registry_file
    if args.requests_per_min is None and args.max_concurrency is None:
        raise CommandRefused("nothing to change: give --requests-per-min and/or --max-concurrency "
                             "(a number, or off to remove the limit)")
    with exclusive(file):
        clients = _load(file)
        entry = _require(clients, args.name, file)
        limits = _with_limits(entry.limits, args.requests_per_min, args.max_concurrency)
        if limits == entry.limits:
            print(f"client {args.name!r} already has these limits ({describe_limits(limits)})")
            return 0
        backup = _save(file, {**clients, args.name: entry.model_copy(update={"limits": limits})})
        _audit(settings, "client_updated", args.name, backup, limits=limits.model_dump())
    print(f"client {args.name!r} limits: {describe_limits(limits)} (was: {describe_limits(entry.limits)}); "
          "a running gateway applies them within a second")
    return 0


@reporting
def _remove(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    file = settings.registry_file
    with exclusive(file):
        clients = _load(file)
        _require(clients, args.name, file)
        backup = _save(file, {name: e for name, e in clients.items() if name != args.name})
        _audit(settings, "client_removed", args.name, backup)
    print(f"removed client {args.name!r}; its token no longer works")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    settings = resolve_settings(args)
    file = settings.registry_file
    state = "disabled" if disabled else "enabled"
    with exclusive(file):
        clients = _load(file)
        entry = _require(clients, args.name, file)
        if entry.disabled == disabled:
            print(f"client {args.name!r} is already {state}")
            return 0
        update: dict[str, Any] = {"disabled": disabled}
        if disabled:  # ends the client's session tokens for good, even once it is enabled again
            update["session_generation"] = entry.session_generation + 1
        backup = _save(file, {**clients, args.name: entry.model_copy(update=update)})
        _audit(settings, f"client_{state}", args.name, backup)
    print(f"client {args.name!r} {state}")
    return 0


@reporting
def _disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


@reporting
def _enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)


@reporting
def _rotate(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    file = settings.registry_file
    with exclusive(file):
        clients = _load(file)
        entry = _require(clients, args.name, file)
        token = new_token()
        update: dict[str, Any] = {"token_sha256": hash_token(token)}
        if args.expires_in:
            update["expires_at"] = int(time.time()) + args.expires_in
        entry = entry.model_copy(update=update)
        backup = _save(file, {**clients, args.name: entry})
        _audit(settings, "client_rotated", args.name, backup, expires_at=entry.expires_at)
    show_token(args.name, token, entry, verb="rotated", print_token=args.print_token)
    if entry.disabled:
        print(f"llm-caller: note: client {args.name!r} is disabled; "
              f"`llm-caller clients enable {args.name}` lets the new token in", file=sys.stderr)
    return 0


# ---- parser ---------------------------------------------------------------------------


def _action(sub: Any, name: str, handler: Handler, help_text: str, *, named: bool = True) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    if named:
        parser.add_argument("name", metavar="NAME", help="client name (lowercase letters, digits, '-', '_')")
    add_config_dir(parser)
    parser.set_defaults(handler=handler)
    return parser


def _token_options(parser: argparse.ArgumentParser, expiry_help: str) -> None:
    parser.add_argument("--expires-in", type=parse_duration, metavar="DURATION", help=expiry_help)
    parser.add_argument("--print-token", action="store_true",
                        help="print only the token on stdout, for scripts: TOKEN=$(llm-caller clients ...)")


def _limit_options(parser: argparse.ArgumentParser, unset: str) -> None:
    parser.add_argument("--requests-per-min", type=parse_rate, metavar="N",
                        help=f"calls per minute this client may make, or off (default: {unset})")
    parser.add_argument("--max-concurrency", type=parse_concurrency, metavar="N",
                        help=f"calls this client may have in flight at once (1-{_MAX_CONCURRENCY}), or off "
                             f"(default: {unset})")


def register(sub: Any) -> None:
    clients = sub.add_parser("clients", help="manage the MCP clients allowed to call the gateway",
                             description="Manage client-registry.json: who may call, with which token hash.")
    actions = clients.add_subparsers(dest="clients_action", required=True, metavar="ACTION")

    add = _action(actions, "add", _add, "register a client and print its new token once")
    add.add_argument("--tools", type=parse_tools, default=["*"], metavar="LIST",
                     help=f"comma-separated tools it may call ({','.join(TOOL_NAMES)}) or * (default: *)")
    add.add_argument("--providers", type=parse_providers, default=["*"], metavar="LIST",
                     help="comma-separated providers it may use, e.g. work,local, or * (default: *)")
    add.add_argument("--allow-unconfigured", action="store_true",
                     help="accept --providers names that providers.json does not configure yet")
    add.add_argument("--models", type=parse_models, default=["*"], metavar="LIST",
                     help="comma-separated model ids it may be routed to, or * (default: *)")
    _token_options(add, "token lifetime, e.g. 30d, 12h, 90m (default: no expiry)")
    _limit_options(add, "no limit")

    listing = _action(actions, "list", _list, "show registered clients (never their hashes)", named=False)
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")

    update = _action(actions, "update", _update, "change a client's limits; its token stays the same")
    _limit_options(update, "unchanged")
    _action(actions, "remove", _remove, "delete a client; its token stops working")
    _action(actions, "disable", _disable, "refuse a client's token but keep its entry")
    _action(actions, "enable", _enable, "accept a disabled client's token again")
    rotate = _action(actions, "rotate", _rotate, "give a client a new token; the old one stops working")
    _token_options(rotate, "also set a new lifetime from now, e.g. 30d (default: keep the current expiry)")

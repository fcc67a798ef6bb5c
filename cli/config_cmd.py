"""``llm-caller config check | schema`` and ``llm-caller init``: the configuration files themselves.

This module owns the ``config`` parser; other command modules (the assistant) add their
actions to it through ``config_actions``.
"""

from __future__ import annotations

import argparse
import sys
import weakref
from pathlib import Path
from typing import Any

from cli.config_folder import (
    STARTER_PROVIDERS,
    STARTER_REGISTRY,
    fill_in,
    stale_schemas,
    starter_files,
    write_schemas,
    write_starter,
)
from cli.config_warnings import config_warnings, cross_check
from cli.options import CommandRefused, add_config_dir, reporting, resolve_settings
from shared.config import (
    ClientRegistry,
    ConfigError,
    ProvidersFile,
    load_client_registry,
    load_providers,
)

__all__ = [
    "STARTER_PROVIDERS",
    "STARTER_REGISTRY",
    "add_action_config_dir",
    "config_actions",
    "cross_check",
    "register",
]

_REPO_ROOT = Path(__file__).resolve().parent.parent

# ---- config check ---------------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _check(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    errors: list[ConfigError] = []
    providers: ProvidersFile | None = None
    registry: ClientRegistry | None = None
    # Load both before reporting, so one run shows every broken file.
    try:
        providers = load_providers(settings.providers_file)
    except ConfigError as exc:
        errors.append(exc)
    try:
        registry = load_client_registry(settings.registry_file)
    except ConfigError as exc:
        errors.append(exc)
    warnings: list[str] = []
    if providers is not None:
        problems = cross_check(providers)[0]
        warnings = config_warnings(providers)
        for warning in warnings:
            print(f"llm-caller: warning: {settings.providers_file}: {warning}", file=sys.stderr)
        if problems:
            errors.append(ConfigError(settings.providers_file, problems))
    for error in errors:
        print(f"llm-caller: {error}", file=sys.stderr)
    if errors or providers is None or registry is None:
        return 2
    if args.strict and warnings:
        print(f"llm-caller: {_plural(len(warnings), 'warning')} and --strict: not OK", file=sys.stderr)
        return 1
    names = ", ".join(providers.providers)
    print(
        f"config OK: {_plural(len(providers.providers), 'provider')} ({names}), "
        f"{_plural(len(registry.clients), 'client')}"
    )
    return 0


# ---- config schema --------------------------------------------------------------------


def _schema_dir(out: Path | None) -> Path:
    if out is not None:
        return out.absolute()
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "config").is_dir():
        return _REPO_ROOT / "config" / "schema"
    raise CommandRefused("no source checkout here to hold config/schema; fix: pass --out DIR")


@reporting
def _schema(args: argparse.Namespace) -> int:
    folder = _schema_dir(args.out)
    if args.check:
        stale = stale_schemas(folder)
        if stale:
            print(
                f"llm-caller: schema drift in {folder}: {', '.join(stale)} missing or out of date; "
                "fix: run `llm-caller config schema` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"schemas up to date in {folder}")
        return 0
    written = write_schemas(folder)
    print(f"wrote {', '.join(written)} in {folder}" if written else f"schemas already up to date in {folder}")
    return 0


# ---- init -----------------------------------------------------------------------------


@reporting
def _init(args: argparse.Namespace) -> int:
    """Fill in the folder's missing files; with --force, replace the existing ones from the starter too."""
    settings = resolve_settings(args)
    folder = settings.config_dir
    replaced = []
    if args.force:
        for path, (content, mode) in starter_files(settings).items():
            if path.exists():
                write_starter(path, content, mode)
                replaced.append(path)
    written = [path for path in fill_in(settings) if path.suffix == ".json" and path.parent == folder]
    for path in written:
        print(f"wrote {path}")
    for path in replaced:
        print(f"replaced {path} with the starter (the previous version is kept as a dated .bak)")
    kept = [path for path in starter_files(settings) if path not in written and path not in replaced]
    for path in kept:
        print(f"kept {path} as it is (pass --force to replace it with the starter)")
    if written or replaced:
        print(f"next: export {' and '.join(_key_variables(settings.providers_file))} (or edit providers.json), "
              "then")
        print(f"  llm-caller config check --config-dir {folder}")
        print(f"  llm-caller clients add NAME --config-dir {folder}")
    return 0


def _key_variables(file: Path) -> list[str]:
    """The environment variables the providers in ``file`` take their keys from, in file order."""
    try:
        providers = load_providers(file).providers.values()
    except ConfigError:
        return ["the keys its providers reference"]
    return list(dict.fromkeys(p.secret.env for p in providers if p.secret is not None and p.secret.env))


# ---- parser ---------------------------------------------------------------------------


# The action subparsers of each `config` parser built, for other modules to extend.
_CONFIG_ACTIONS: weakref.WeakKeyDictionary[argparse.ArgumentParser, Any] = weakref.WeakKeyDictionary()


def config_actions(sub: Any) -> Any:
    """The subparsers of the `config` command registered in ``sub``, to add actions to."""
    return _CONFIG_ACTIONS[sub.choices["config"]]


def add_action_config_dir(parser: argparse.ArgumentParser) -> None:
    """--config-dir on a `config` action, without undoing one given before the action.

    argparse copies every default of a subcommand over the values its parent parsed, so
    with a plain default `config --config-dir X check` would silently check ./config.
    """
    add_config_dir(parser)
    for action in parser._actions:
        if action.dest == "config_dir":
            action.default = argparse.SUPPRESS


def _no_action(args: argparse.Namespace) -> int:
    print(
        "llm-caller: `config` needs an action: check, schema, providers or rollback "
        "(on a terminal, `llm-caller config` alone opens the assistant); see `llm-caller config --help`",
        file=sys.stderr,
    )
    return 2


def register(sub: Any) -> None:
    config = sub.add_parser(
        "config",
        help="set up, check and roll back the configuration files",
        description="Without an action, on a terminal: the interactive configuration "
        "assistant. Actions work without prompts, for scripts.",
    )
    add_config_dir(config)
    config.set_defaults(handler=_no_action)
    actions = config.add_subparsers(dest="config_action", required=False, metavar="ACTION")
    _CONFIG_ACTIONS[config] = actions

    check = actions.add_parser("check", help="load and cross-check providers.json and client-registry.json")
    add_action_config_dir(check)
    check.add_argument("--strict", action="store_true",
                       help="exit 1 when there are warnings (a key not set, a base_url the worker would "
                            "miss, ...), for scripts")
    check.set_defaults(handler=_check)

    schema = actions.add_parser("schema", help="write config/schema/*.schema.json from the config models")
    schema.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files are out of date")
    schema.add_argument("--out", type=Path, metavar="DIR", help="folder to use (default: the repo's config/schema)")
    schema.set_defaults(handler=_schema)

    init = sub.add_parser("init", help="write the config files that are missing: starter providers.json, empty "
                                         "client-registry.json, schema/")
    add_config_dir(init)
    init.add_argument("--force", action="store_true",
                      help="also replace existing files with the starter (dated .bak copies are kept)")
    init.set_defaults(handler=_init)

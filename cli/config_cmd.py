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

from cli.config_warnings import config_warnings, cross_check
from cli.options import CommandRefused, add_config_dir, reporting, resolve_settings
from shared.config import (
    ClientRegistry,
    ConfigError,
    ProvidersFile,
    json_schemas,
    load_client_registry,
    load_providers,
)
from shared.files import existing_mode, json_bytes, write_bytes_atomic, write_json_atomic

__all__ = [
    "STARTER_PROVIDERS",
    "STARTER_REGISTRY",
    "add_action_config_dir",
    "config_actions",
    "cross_check",
    "register",
]

_REPO_ROOT = Path(__file__).resolve().parent.parent

# The starter written by `init`: the same content as the repo's config/providers.json, kept
# in code so an installed command (with no repo beside it) can still write it. A test
# keeps the two identical.
STARTER_PROVIDERS: dict[str, Any] = {
    "providers": {
        "openai": {
            "kind": "openai",
            "base_url": "https://api.openai.com/v1",
            "secret": {"env": "OPENAI_API_KEY"},
            "models": [
                {"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"], "priority": 10},
                {"id": "gpt-4o", "capabilities": ["chat", "chatStream"], "priority": 20},
                {"id": "text-embedding-3-small", "capabilities": ["embed"], "priority": 10},
            ],
            "timeouts": {"connect_s": 5, "read_s": 60, "total_s": 120},
            "max_concurrency": 32,
            "priority": 10,
        },
        "anthropic": {
            "kind": "anthropic",
            "base_url": "https://api.anthropic.com",
            "secret": {"env": "ANTHROPIC_API_KEY"},
            "models": [
                {"id": "claude-haiku-4-5", "capabilities": ["chat", "chatStream"], "priority": 10},
                {"id": "claude-sonnet-4-5", "capabilities": ["chat", "chatStream"], "priority": 20},
            ],
            "timeouts": {"connect_s": 5, "read_s": 60, "total_s": 120},
            "max_concurrency": 32,
            "priority": 20,
        },
        "lmstudio": {
            "kind": "lmstudio",
            "base_url": "http://localhost:1234",
            "models": [],
            "discover_models": True,
            "timeouts": {"connect_s": 2, "read_s": 120, "total_s": 300},
            "max_concurrency": 4,
            "priority": 50,
        },
    },
    "defaults": {
        "chat": {"provider": "openai", "model": "gpt-4o-mini"},
        "chatStream": {"provider": "openai", "model": "gpt-4o-mini"},
        "embed": {"provider": "openai", "model": "text-embedding-3-small"},
    },
    "fallbacks": {
        "chat": [{"provider": "anthropic", "model": "claude-haiku-4-5"}, {"provider": "lmstudio"}],
        "chatStream": [{"provider": "anthropic", "model": "claude-haiku-4-5"}, {"provider": "lmstudio"}],
        "embed": [{"provider": "lmstudio"}],
    },
    "aliases": {
        "fast": {"provider": "openai", "model": "gpt-4o-mini"},
        "smart": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
        "local": {"provider": "lmstudio"},
    },
}

STARTER_REGISTRY: dict[str, Any] = {"clients": {}}


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


def _schema_files() -> dict[str, bytes]:
    # Sorted keys: the committed files must not change when pydantic reorders its output.
    return {name: json_bytes(schema, sort_keys=True) for name, schema in json_schemas().items()}


def _schema_dir(out: Path | None) -> Path:
    if out is not None:
        return out.absolute()
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "config").is_dir():
        return _REPO_ROOT / "config" / "schema"
    raise CommandRefused("no source checkout here to hold config/schema; fix: pass --out DIR")


def _stale_schemas(folder: Path) -> list[str]:
    stale = []
    for name, content in _schema_files().items():
        try:
            current = (folder / name).read_bytes()
        except OSError:
            current = None
        if current != content:
            stale.append(name)
    return stale


def _write_schemas(folder: Path) -> list[str]:
    """Write the schemas that differ; return their names (unchanged files keep their mtime)."""
    stale = _stale_schemas(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = _schema_files()
    for name in stale:
        write_bytes_atomic(folder / name, files[name])
    return stale


@reporting
def _schema(args: argparse.Namespace) -> int:
    folder = _schema_dir(args.out)
    if args.check:
        stale = _stale_schemas(folder)
        if stale:
            print(
                f"llm-caller: schema drift in {folder}: {', '.join(stale)} missing or out of date; "
                "fix: run `llm-caller config schema` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"schemas up to date in {folder}")
        return 0
    written = _write_schemas(folder)
    print(f"wrote {', '.join(written)} in {folder}" if written else f"schemas already up to date in {folder}")
    return 0


# ---- init -----------------------------------------------------------------------------


@reporting
def _init(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    folder = settings.config_dir
    targets = {
        settings.providers_file: (STARTER_PROVIDERS, 0o644),
        settings.registry_file: (STARTER_REGISTRY, 0o600),  # same mode `clients add` gives a new registry
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing and not args.force:
        raise CommandRefused(
            f"{' and '.join(existing)} already exist; nothing was written; "
            "fix: pass --force to overwrite (a dated .bak copy of each is kept)"
        )
    ProvidersFile.model_validate(STARTER_PROVIDERS)  # a starter that fails its own check is a bug
    folder.mkdir(parents=True, exist_ok=True)
    # The schemas are derived from the code, never edited, so refreshing them needs no --force.
    _write_schemas(folder / "schema")
    for path, (content, mode) in targets.items():
        data = {"$schema": f"./schema/{path.stem}.schema.json", **content}
        write_json_atomic(path, data, mode=existing_mode(path, mode), backup=True)
    print(f"wrote {settings.providers_file} and {settings.registry_file}")
    print("next: export OPENAI_API_KEY and ANTHROPIC_API_KEY (or edit providers.json), then")
    print(f"  llm-caller config check --config-dir {folder}")
    print(f"  llm-caller clients add NAME --config-dir {folder}")
    return 0


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

    init = sub.add_parser("init", help="write a starter providers.json and an empty client-registry.json")
    add_config_dir(init)
    init.add_argument("--force", action="store_true", help="overwrite existing files (dated .bak copies are kept)")
    init.set_defaults(handler=_init)

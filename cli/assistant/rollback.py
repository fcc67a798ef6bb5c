"""``llm-caller config rollback``: list the dated backups of a config file and restore one.

Backups are the ``<file>.<UTC time>[-n].bak`` copies every save leaves beside the file.
A restore is itself a save: validated first (a backup the gateway would refuse is not
restored), shown as a change, written atomically, and it backs up the current file, so
rolling back the rollback is one more ``config rollback``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from cli.assistant.store import Change, FileKey, Target, on_disk, save, target_for
from cli.assistant.ui import CliUi, Ui
from cli.options import CommandRefused, reporting, resolve_settings
from shared.files import dated_backups
from shared.settings import Settings

__all__ = ["Backup", "backups", "restore", "rollback"]


@dataclass(frozen=True)
class Backup:
    path: Path
    stamp: str
    seq: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def when(self) -> str:
        return datetime.strptime(self.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def backups(target: Target) -> list[Backup]:
    """Backups of ``target``, newest first (same-second backups by their -n counter)."""
    return [Backup(path, stamp, seq) for path, stamp, seq in dated_backups(target.path)]


def describe(target: Target, backup: Backup) -> str:
    data = on_disk(backup.path)
    if data is None:
        return "unreadable or not JSON"
    if target.key == "providers":
        names = list(data.get("providers") or {})
        return f"{len(names)} provider{'s' * (len(names) != 1)}: {', '.join(names) or '-'}"
    clients = data.get("clients") or {}
    return f"{len(clients)} client{'s' * (len(clients) != 1)}"


def restore(settings: Settings, ui: Ui, target: Target, backup: Backup) -> bool:
    data = on_disk(backup.path)
    if data is None:
        raise CommandRefused(f"cannot restore {backup.name}: it is unreadable or not JSON; "
                             "fix: pick another with `llm-caller config rollback --list`")
    # The current file may be the broken one being rolled back, so it is read without validating.
    change = Change(target, on_disk(target.path), data, event="config_rolled_back",
                    fields={"restored_from": backup.name})
    return save(change, ui, settings)


def _file_key(args: argparse.Namespace) -> FileKey:
    inferred: FileKey | None = None
    if args.to:
        inferred = "clients" if args.to.startswith("client-registry.json.") else "providers"
    if args.file and inferred and args.file != inferred:
        raise CommandRefused(f"{args.to} is not a backup of the {args.file} file; fix: drop --file or pick "
                             "a name from `llm-caller config rollback --list`")
    key: FileKey = args.file or inferred or "providers"
    return key


def _list(settings: Settings, keys: list[FileKey], as_json: bool) -> int:
    rows = []
    for key in keys:
        target = target_for(settings, key)
        rows += [{"file": key, "name": b.name, "time": b.when, "content": describe(target, b)}
                 for b in backups(target)]
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"no backups in {settings.config_dir}; every save by llm-caller makes one")
    for row in [] if as_json else rows:
        print(f"{row['file']:<10} {row['name']:<52} {row['time']}  {row['content']}")
    return 0


@reporting
def rollback(args: argparse.Namespace) -> int:
    settings = resolve_settings(args)
    if args.list:
        keys: list[FileKey] = [args.file] if args.file else ["providers", "clients"]
        return _list(settings, keys, args.json)
    target = target_for(settings, _file_key(args))
    found = backups(target)
    if not found:
        raise CommandRefused(f"no backups of {target.path}; nothing to roll back to")
    chosen = found[0] if not args.to else next((b for b in found if b.name == Path(args.to).name), None)
    if chosen is None:
        raise CommandRefused(f"no backup named {args.to!r} beside {target.path}; "
                             f"fix: pick one of: {', '.join(b.name for b in found[:5])}")
    print(f"restoring {chosen.name} (saved {chosen.when})")
    restore(settings, CliUi(assume_yes=args.yes), target, chosen)
    return 0

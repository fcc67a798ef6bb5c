"""The one save pipeline: validate, show the change, confirm, write atomically with a backup, audit.

Changes are made to the file's *raw* JSON, not to a model dump, so a save writes back
what the operator had (no sudden wall of defaults) plus exactly the change. The result
is validated with the same strict models and cross-checks the gateway uses at start-up:
the assistant can never write a file that ``llm-caller up`` would refuse.
"""

from __future__ import annotations

import copy
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import orjson
from pydantic import ValidationError

from cli.assistant.credentials import PendingSecret, stage
from cli.assistant.diff import changed_paths, summarize
from cli.assistant.journal import record
from cli.assistant.ui import Ui
from cli.config_cmd import cross_check
from cli.config_folder import fill_in
from cli.options import CommandRefused
from cli.stack import Stack, StackError
from shared.config import ClientRegistry, ConfigError, ProvidersFile, load_client_registry, load_providers
from shared.config import _describe as describe_problem  # the one wording of a config problem
from shared.files import FileWriteError, exclusive, existing_mode, write_json_atomic
from shared.policies import StrictModel
from shared.settings import Settings

__all__ = [
    "Change", "Target", "apply_to_running_stack", "body_of", "on_disk", "read_current", "save", "target_for",
    "validate",
]

FileKey = Literal["providers", "clients"]


@dataclass(frozen=True)
class Target:
    """One of the two config files, and how to load and create it."""

    key: FileKey
    path: Path
    model: type[StrictModel]
    loader: Callable[[Path], object]
    new_mode: int  # for a file created from nothing; an existing file keeps its mode

    @property
    def schema_hint(self) -> str:
        return f"./schema/{self.path.stem}.schema.json"


def target_for(settings: Settings, key: FileKey) -> Target:
    if key == "providers":
        return Target("providers", settings.providers_file, ProvidersFile, load_providers, 0o644)
    # The registry holds only hashes, but nobody except the operator needs to read it.
    return Target("clients", settings.registry_file, ClientRegistry, load_client_registry, 0o600)


def read_current(target: Target) -> dict[str, Any] | None:
    """The file's raw JSON after checking it loads; None when it does not exist yet."""
    if not target.path.exists():
        return None
    target.loader(target.path)  # a broken file stops here with the usual ConfigError
    data: dict[str, Any] = orjson.loads(target.path.read_bytes())
    return data


def body_of(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A deep copy without the editor's ``$schema`` hint, safe to change."""
    return {k: copy.deepcopy(v) for k, v in (raw or {}).items() if k != "$schema"}


def validate(target: Target, data: dict[str, Any]) -> list[str]:
    """Refuse content the gateway would refuse; return warnings worth showing."""
    body = body_of(data)
    try:
        model = target.model.model_validate(body, strict=True)
    except ValidationError as exc:
        _refuse(target, [describe_problem(e) for e in exc.errors(include_url=False)])
    if not isinstance(model, ProvidersFile):
        return []
    problems, warnings = cross_check(model)
    if problems:
        _refuse(target, problems)
    return warnings


def _refuse(target: Target, problems: list[str]) -> NoReturn:
    lines = "\n".join(f"  - {p}" for p in problems)
    raise CommandRefused(f"not saved: the change would make {target.path} invalid "
                         f"({target.path.name} is unchanged):\n{lines}")


@dataclass
class Change:
    """A proposed new content for one file, with what the audit trail should say about it."""

    target: Target
    before: dict[str, Any] | None
    after: dict[str, Any]
    event: str
    fields: dict[str, Any] = field(default_factory=dict)  # audit fields: names and kinds, never a key
    secret: PendingSecret | None = None


def save(change: Change, ui: Ui, settings: Settings) -> bool:
    """Run the pipeline; True when the file was written, False when nothing changed or the operator declined."""
    for warning in validate(change.target, change.after):
        ui.warn(f"{change.target.path.name}: {warning}")
    lines = summarize(change.before, change.after)
    if change.secret is not None:
        lines.append(f"{'~' if change.secret.path.exists() else '+'} key file {change.secret.path}: [secret]")
    if not lines:
        ui.say(f"no changes; {change.target.path.name} left as it is")
        return False
    ui.say(f"changes to {change.target.path}:")
    for line in lines:
        ui.say(f"  {line}")
    if not ui.confirm(f"Save these changes to {change.target.path.name}?"):
        ui.say("not saved")
        return False
    backup = _write(change)
    entries = [f"{sign}{path}" for sign, path in changed_paths(change.before, change.after)]
    record(settings, change.event, file=str(change.target.path), backup=backup.name if backup else None,
           changes=entries[:200], **change.fields)
    kept = f"; the previous version is kept as {backup.name}" if backup else ""
    ui.say(f"saved {change.target.path}{kept}")
    for path in fill_in(settings):
        ui.say(f"also wrote {path} (it was missing; a config folder needs all of its files)")
    if change.target.key == "providers":
        apply_to_running_stack(settings, ui)
    return True


def apply_to_running_stack(settings: Settings, ui: Ui) -> None:
    """Give a running stack a worker for each provider now configured, and none for a removed one.

    Clients are re-read live; providers are loaded once by the gateway and each worker, so
    a changed provider list adds or removes that provider's worker (the others keep
    running) and restarts the gateway; other provider changes apply at a restart.
    """
    stack = Stack(settings)
    try:
        change = stack.sync_workers()
    except (OSError, xmlrpc.client.Fault, ConfigError, FileWriteError, StackError) as exc:
        ui.warn(f"the running stack was not updated ({exc}); fix: `llm-caller down` then `llm-caller up`")
        return
    if change is None:
        ui.say("providers apply at the next `llm-caller up`")
        return
    for program in change.added:
        ui.say(f"running stack: started {program}; the gateway restarted to route to it")
    for program in change.removed:
        ui.say(f"running stack: stopped and removed {program}; the gateway restarted")
    if not (change.added or change.removed):
        ui.say("running stack: other provider changes apply when that worker and the gateway restart "
               "(`llm-caller restart NAME`, `llm-caller restart gateway`)")


def _with_schema_hint(change: Change) -> dict[str, Any]:
    body = body_of(change.after)
    had_hint = change.before is not None and "$schema" in change.before
    if had_hint or (change.target.path.parent / change.target.schema_hint).exists():
        return {"$schema": change.target.schema_hint, **body}  # keeps editor completion working
    return body


def _write(change: Change) -> Path | None:
    path = change.target.path
    data = _with_schema_hint(change)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(f"cannot create the config folder {path.parent} ({exc.strerror}); "
                             "nothing was written; fix: check its permissions or use another --config-dir") from None
    with exclusive(path):
        if on_disk(path) != change.before:
            # Someone saved in between (another llm-caller command, an editor): writing now
            # would silently undo their change.
            raise CommandRefused(f"not saved: {path} changed since this change was prepared (another "
                                 f"llm-caller command or an editor saved it); {path.name} keeps their version; "
                                 "fix: run the command again to start from the current file")
        undo = stage(change.secret) if change.secret is not None else None
        try:
            return write_json_atomic(path, data, mode=existing_mode(path, change.target.new_mode), backup=True)
        except BaseException:
            if undo is not None:
                undo()  # the config still names the old key file (or none), so the old key must stay
            raise


def on_disk(path: Path) -> dict[str, Any] | None:
    """The file's JSON as a change's ``before`` holds it: None when missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None

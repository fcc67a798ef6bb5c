"""The audit trail: who changed what, and when, as append-only JSON lines.

One line per event, ``{"ts", "event", "actor", ...fields}``, written with a single
``O_APPEND`` write so concurrent writers (the CLI, the gateway) never interleave inside
a line. The file is created 0600: it names clients and providers, which is nobody
else's business. Nothing secret belongs here; as a second line of defence every string
field passes through ``shared.redact`` so a key pasted into the wrong place is masked.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared.files import FileWriteError
from shared.redact import redact

__all__ = ["audit_event", "current_actor"]

_RESERVED = frozenset({"ts", "event", "actor"})


def current_actor() -> str:
    """The operating-system user running this process.

    The password database first: $USER and $LOGNAME are whatever the caller set, and an
    audit trail should not take the actor's word for who they are.
    """
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry, common in containers
        return f"uid:{uid}"


def audit_event(path: Path, event: str, **fields: Any) -> None:
    """Append one event to ``path``; raise ``FileWriteError`` if it cannot be written."""
    clash = _RESERVED.intersection(fields)
    if clash:
        raise ValueError(f"audit fields may not be named {', '.join(sorted(clash))}")
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "event": event,
        "actor": current_actor(),
    }
    record.update({key: _scrub(value) for key, value in fields.items()})
    _append(Path(path), orjson.dumps(record, default=str) + b"\n")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def _append(path: Path, line: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: never append through a symlink someone planted at the audit path.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise FileWriteError(f"cannot write the audit file {path} ({exc.strerror or exc})") from None
    try:
        written = 0
        while written < len(line):  # a regular-file write is only short on a full disk
            written += os.write(fd, line[written:])
        # Config changes are rare; losing their record to a crash is worse than one fsync.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    except OSError as exc:
        raise FileWriteError(f"cannot write the audit file {path} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)

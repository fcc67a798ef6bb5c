"""The audit trail: who changed what, and when, as append-only JSON lines.

One line per event, ``{"ts", "event", "actor", ...fields}``, written with a single
``O_APPEND`` write so concurrent writers (the CLI, the gateway) never interleave inside
a line. The file is created 0600: it names clients and providers, which is nobody
else's business. Nothing secret belongs here; as a second line of defence every string
field passes through ``shared.redact`` so a key pasted into the wrong place is masked.

Rotation: once a line would take the file past ``LLMC_LOG_MAX_BYTES`` (default 10MB,
supervisord's notation: ``1048576``, ``512KB``, ``10MB``, ``1GB``), it is renamed
``audit.jsonl.1`` (older ones shift to ``.2`` ...) and a new file begins; only
``LLMC_LOG_BACKUPS`` (default 5) old files are kept. The same two settings rotate the
process logs, so one pair of numbers bounds everything in the log folder. Writers take
turns on the rename through a lock file beside the trail (``audit.jsonl.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared.files import FileWriteError
from shared.redact import redact

__all__ = ["audit_event", "current_actor", "rotation_limits"]

_RESERVED = frozenset({"ts", "event", "actor"})
_DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_DEFAULT_BACKUPS = 5
_SIZE = re.compile(r"\s*([0-9]+)\s*(KB|MB|GB)?\s*", re.IGNORECASE)
_UNITS = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def rotation_limits(env: dict[str, str] | None = None) -> tuple[int, int]:
    """(largest file in bytes, old files kept) from LLMC_LOG_MAX_BYTES / LLMC_LOG_BACKUPS.

    A value that does not parse falls back to the default: the audit trail must still be
    written (the launcher validates nothing here, and refusing to audit would be worse).
    """
    source = os.environ if env is None else env
    size = _SIZE.fullmatch(source.get("LLMC_LOG_MAX_BYTES", ""))
    max_bytes = int(size[1]) * _UNITS[size[2].upper() if size[2] else None] if size else _DEFAULT_MAX_BYTES
    backups = source.get("LLMC_LOG_BACKUPS", "").strip()
    kept = int(backups) if backups.isdigit() else _DEFAULT_BACKUPS
    # A zero size means "never rotate" in supervisord; here it would rotate on every line.
    return (max_bytes if max_bytes > 0 else _DEFAULT_MAX_BYTES), kept


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


def _open(path: Path) -> int:
    # O_NOFOLLOW: never append through a symlink someone planted at the audit path.
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def _append(path: Path, line: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open(path)
        max_bytes, kept = rotation_limits()
        status = os.fstat(fd)
        if status.st_size > 0 and status.st_size + len(line) > max_bytes:
            os.close(fd)
            _rotate(path, status.st_ino, kept)
            fd = _open(path)
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


def _rotate(path: Path, inode: int, kept: int) -> None:
    """Shift ``path`` to ``path.1`` (and older ones up), dropping what is past ``kept``.

    Under an exclusive lock, and only if ``path`` is still the file (``inode``) found too
    full: another writer may have rotated it while this one waited for the lock.
    """
    lock = os.open(path.with_name(path.name + ".lock"),
                   os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.stat().st_ino != inode:
                return
        except FileNotFoundError:
            return
        old = [path.with_name(f"{path.name}.{n}") for n in range(1, kept + 1)]
        if not old:
            path.unlink()
            return
        with contextlib.suppress(FileNotFoundError):
            old[-1].unlink()
        for newer, older in zip(reversed(old[:-1]), reversed(old[1:]), strict=True):
            with contextlib.suppress(FileNotFoundError):
                newer.rename(older)
        path.rename(old[0])
    finally:
        os.close(lock)  # closing releases the lock

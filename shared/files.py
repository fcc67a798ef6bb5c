"""Writing files so a crash, a full disk or a read-only folder never leaves half a file.

Every write goes to a temporary file in the destination's own folder (so the final
``os.replace`` is a same-filesystem rename, which POSIX makes atomic), is flushed to
disk, and only then takes the real name. A reader, such as the gateway re-reading
client-registry.json, sees either the old file or the new one, never a mix.

Failures become ``FileWriteError`` with one plain sentence for the operator; the old
file is left exactly as it was and no temporary file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "KEEP_BACKUPS",
    "FileWriteError",
    "dated_backups",
    "exclusive",
    "existing_mode",
    "json_bytes",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_secret_file",
]


# Dated backups kept per file; older ones are removed after each successful save, so a
# long-lived config folder does not fill up with copies nobody will restore.
KEEP_BACKUPS = 20
_BACKUP_STAMP = re.compile(r"\.(\d{8}T\d{6}Z)(?:-(\d+))?\.bak$")


class FileWriteError(Exception):
    """A file could not be written. ``str()`` is the whole operator message; no traceback needed."""


def json_bytes(data: Any, *, sort_keys: bool = False) -> bytes:
    """The on-disk JSON form: two-space indent and a trailing newline, as editors and diffs expect."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(data, option=option) + b"\n"


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o644, backup: bool = False) -> Path | None:
    """Replace ``path`` with ``data`` as JSON. With ``backup``, first keep a dated copy; return its path."""
    payload = json_bytes(data)  # serialise first: a bad value must fail before anything touches disk
    backup_path = _backup(path) if backup else None
    try:
        write_bytes_atomic(path, payload, mode=mode)
    except BaseException:
        if backup_path is not None:
            backup_path.unlink(missing_ok=True)  # the original is intact, so the copy is only clutter
        raise
    if backup_path is not None:
        _prune_backups(path, KEEP_BACKUPS)
    return backup_path


def dated_backups(path: Path) -> list[tuple[Path, str, int]]:
    """``path``'s backups as (file, UTC stamp, same-second counter), newest first."""
    path = Path(path)
    found = []
    for candidate in path.parent.glob(glob.escape(path.name) + ".*.bak"):
        match = _BACKUP_STAMP.search(candidate.name)
        if match and candidate.name == f"{path.name}{match[0]}" and candidate.is_file():
            found.append((candidate, match[1], int(match[2] or 0)))
    return sorted(found, key=lambda b: (b[1], b[2]), reverse=True)


def _prune_backups(path: Path, keep: int) -> None:
    for old, _stamp, _seq in dated_backups(path)[keep:]:
        # The save itself succeeded; a copy that cannot be removed is only clutter.
        with contextlib.suppress(OSError):
            old.unlink()


@contextlib.contextmanager
def exclusive(path: Path, *, create_folder: bool = False, wait_s: float = 10.0) -> Iterator[None]:
    """Hold ``path``'s lock (``.<name>.lock`` beside it) across a read-change-write.

    Two ``llm-caller clients ...`` commands at once would otherwise both read the old
    file, and the second save would silently drop the first one's change. The lock is
    advisory (``flock``): only our own commands take it; the gateway only reads, and an
    atomic replace never shows it half a file anyway. Released when the block ends,
    also if the process dies. Without ``create_folder``, a missing folder is left missing
    (there is no file to protect, and the command will say so itself).
    """
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    if not create_folder and not path.parent.is_dir():
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise FileWriteError(_explain(exc, path)) from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FileWriteError(
                        f"{path} is being changed by another llm-caller command (it holds {lock.name}); "
                        f"nothing was written; fix: retry when that command has finished") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_secret_file(path: Path, value: str | bytes) -> None:
    """Write a secret that is never readable by others, not even for an instant.

    The temporary file is created 0600 (``write_bytes_atomic`` always does), so there is
    no window in which a default umask would let another user read it before a chmod.
    """
    payload = value.encode("utf-8") if isinstance(value, str) else value
    write_bytes_atomic(path, payload, mode=0o600)


def write_bytes_atomic(path: Path, payload: bytes, *, mode: int = 0o644) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never write through a file (or symlink) someone else put at this name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise FileWriteError(_explain(exc, path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)  # before fsync, so the mode is as durable as the bytes
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise FileWriteError(_explain(exc, path)) from None
        raise
    _fsync_dir(path.parent)


def existing_mode(path: Path, default: int) -> int:
    """The permission bits of ``path`` if it exists, so a rewrite never widens who may read it."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default


def _backup(path: Path) -> Path | None:
    """Copy the current file to ``<name>.<UTC time>.bak`` beside it; None when there is nothing to keep."""
    try:
        content = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileWriteError(f"cannot read {path} to back it up ({exc.strerror})") from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Two writes in the same second must not overwrite the first one's backup, and the
    # counter must keep rising even after pruning freed a lower one: it orders them.
    first = max((seq + 1 for _p, s, seq in dated_backups(path) if s == stamp), default=0)
    for attempt in range(first, first + 100):
        suffix = f".{stamp}.bak" if attempt == 0 else f".{stamp}-{attempt}.bak"
        target = path.with_name(path.name + suffix)
        try:
            _write_new(target, content, mode)
        except FileExistsError:
            continue
        return target
    raise FileWriteError(f"cannot back up {path}: too many backups named {path.name}.{stamp}*.bak")


def _write_new(target: Path, content: bytes, mode: int) -> None:
    try:
        # The backup keeps the original's permissions from creation on (never wider).
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise
    except OSError as exc:
        raise FileWriteError(_explain(exc, target)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise FileWriteError(_explain(exc, target)) from None


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable. Best effort: the new file is already in place, and
    # some filesystems refuse fsync on a directory, which must not turn success into failure.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _explain(exc: OSError, path: Path) -> str:
    folder = path.parent
    unchanged = f"{path.name} is unchanged" if path.exists() else "nothing was written"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"cannot write {path}: the folder {folder} is read-only or not writable by this user "
                f"({exc.strerror}); {unchanged}; fix: check the folder's permissions or use another folder")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"cannot write {path}: the disk is full ({exc.strerror}); {unchanged}; "
                "fix: free some space and retry")
    if exc.errno == errno.ENOENT:
        return f"cannot write {path}: the folder {folder} does not exist; fix: create it first"
    return f"cannot write {path}: {exc.strerror or exc}; {unchanged}"

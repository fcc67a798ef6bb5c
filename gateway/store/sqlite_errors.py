"""SQLite's errors as ``StoreError``s an operator can act on: what, where, what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.records import StoreError

__all__ = ["explain"]


def explain(exc: sqlite3.Error, path: Path) -> StoreError:
    """The operator's reading of ``exc`` on the store file ``path``."""
    extended = getattr(exc, "sqlite_errorcode", None)
    code = extended & 0xFF if isinstance(extended, int) else None  # the primary code of an extended one
    text = str(exc)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return StoreError(f"store {path} is locked by another process: it held the lock past the busy timeout. "
                          f"Find it with `fuser {path}` and stop it, or give this gateway its own LLMC_STORE_URL")
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or "not a database" in text or "malformed" in text:
        return StoreError(f"store {path} is not a readable SQLite database (damaged or another kind of file): "
                          "restore it from a backup, or move it aside and the gateway starts a new, empty one")
    if code == sqlite3.SQLITE_READONLY or "readonly" in text:
        return StoreError(f"store {path} is read-only for this gateway: give its user write access to the file, "
                          "its -wal and -shm files and its folder")
    if code == sqlite3.SQLITE_CANTOPEN or "unable to open" in text:
        return StoreError(f"store {path} cannot be opened: check that its folder exists and this user may write "
                          "there, or set LLMC_STORE_URL to another place")
    if code == sqlite3.SQLITE_FULL:
        return StoreError(f"store {path}: the disk is full; free space, then restart the gateway")
    return StoreError(f"store {path} failed: {text}")

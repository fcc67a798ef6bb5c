"""``SqliteStore``: the default store, one SQLite file in the operator's state folder.

The stdlib ``sqlite3`` blocks, so the connection lives in one dedicated thread (a
single-worker executor) and every call runs there: the gateway's event loop never waits on
the disk or on a lock. WAL journal (readers never block the writer), a busy timeout,
foreign keys on (turns and blobs go with their thread). The folder is created 0700 and the
file 0600 when this creates them; SQLite gives the ``-wal`` and ``-shm`` files the
database file's mode. Opening checks the file (``PRAGMA quick_check``), then brings the
schema up to date (``gateway.store.migrations``), refusing a newer one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from gateway.store import sql_ops as ops
from gateway.store.migrations import SCHEMA_VERSION, VERSION_TABLE, check_version, pending, statements
from gateway.store.records import (
    StoreError,
    StoreHealth,
)
from gateway.store.sql_store import SqlStore, ping
from gateway.store.sqlite_errors import explain

__all__ = ["BUSY_TIMEOUT_S", "SqliteStore", "sqlite_path"]

T = TypeVar("T")

# How long a statement waits for another process's lock before the store reports "locked".
BUSY_TIMEOUT_S = 5.0


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///ABSOLUTE/PATH`` URL names; ``StoreError`` for any other shape.

    ``sqlite:///var/x.db`` and ``sqlite:////var/x.db`` (SQLAlchemy's spelling) both name ``/var/x.db``.
    """
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.query:
        raise StoreError(f"store URL {url!r} is not sqlite:///ABSOLUTE/PATH (three slashes, then an absolute path)")
    return Path("/" + parts.path.lstrip("/"))


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and an empty file (0600) if missing, so nothing is ever born world-readable."""
    folder = path.parent
    if not folder.is_dir():
        try:
            for level in reversed([folder, *folder.parents]):  # every level this creates is 0700
                if not level.is_dir():
                    level.mkdir(mode=0o700)
        except OSError as exc:
            raise StoreError(f"store folder {folder} is missing and cannot be created ({exc.strerror}): create it, "
                             "or set LLMC_STORE_URL to sqlite:///PATH in a folder this user can write") from exc
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"store {path} cannot be created in {folder} ({exc.strerror}): make the folder writable "
                         "by the gateway's user, or set LLMC_STORE_URL to another place") from exc


class SqliteStore(SqlStore):
    """The ``Store`` protocol on one SQLite file, driven from one thread."""

    backend = "sqlite"

    def __init__(self, url: str) -> None:
        self.path = sqlite_path(url)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # ---- the database thread ------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError(f"store {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _connect(self) -> None:
        _prepare_file(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StoreError(f"store {self.path} is damaged (quick_check: {check[0] if check else 'no answer'}): "
                                 "restore it from a backup, or move it aside and the gateway starts a new one")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across crashes of the process
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(statements(VERSION_TABLE, "sqlite")[0])
            found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM llmc_schema").fetchone()[0]
            check_version(int(found), str(self.path))
            for migration in pending(int(found)):
                for sql in statements(migration.sql, "sqlite"):
                    conn.execute(sql)
                conn.execute("INSERT INTO llmc_schema (version, description, applied_at) VALUES (?, ?, ?)",
                             (migration.version, migration.description, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _run(self, op: ops.Op[T], write: bool) -> T:
        """One operation as one transaction (``BEGIN IMMEDIATE`` when it writes: no upgrade deadlock)."""
        conn = self._conn
        if conn is None:
            raise StoreError(f"store {self.path} is not open")
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                query = next(op)
                while True:
                    cursor = (conn.execute(query.sql, query.params) if query.many is None
                              else conn.executemany(query.sql, query.many))
                    query = op.send(ops.Result(cursor.rowcount, cursor.fetchall()))
            except StopIteration as done:
                conn.execute("COMMIT")
                return done.value  # type: ignore[no-any-return]
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"store {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc

    async def _op(self, op: ops.Op[T], write: bool = True) -> T:
        return await self._call(self._run, op, write)

    # ---- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmc-store")
        try:
            await self._call(self._opened)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _opened(self) -> None:
        try:
            self._connect()
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._call(self._closed)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _closed(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def health(self) -> StoreHealth:
        try:
            await self._op(ping(), write=False)
        except (StoreError, ValueError) as exc:
            return StoreHealth(self.backend, False, str(exc))
        return StoreHealth(self.backend, True, f"{self.path}, schema version {SCHEMA_VERSION}")


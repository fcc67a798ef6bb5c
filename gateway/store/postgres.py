"""``PostgresStore``: the store several gateways of one team share, on PostgreSQL (psycopg 3, async).

The URL names the server, user and database (``postgresql://USER@HOST:PORT/DB``); the
password comes only from ``StoreSettings.password_file``, never from the URL, and appears in
no message or log. Opening connects once on its own connection (so a wrong password or a
server that is down is a clear error at once), brings the schema up to date under an
advisory lock (two gateways starting together migrate once), then opens a small pool.

The statements are the shared ones (``gateway.store.sql_ops``): each operation runs as one
transaction on one pooled connection, and a conditional ``UPDATE`` takes the row's lock, so
a second gateway's identical update waits, re-reads the row and matches nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gateway.store import sql_ops as ops
from gateway.store.migrations import SCHEMA_VERSION, VERSION_TABLE, check_version, pending, statements
from gateway.store.records import StoreError, StoreHealth
from gateway.store.sql_store import SqlStore, ping
from shared.link_auth import KeyFileError, read_private_file
from shared.settings import StoreSettings

__all__ = ["PostgresStore"]

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
POOL_SIZE = (1, 8)
# pg_advisory_xact_lock key for migrations: one gateway migrates, the others wait, then find it done.
_MIGRATION_LOCK = 0x6C6C6D63  # "llmc"


def _read_password(path: Path | None) -> str | None:
    """The password from its file, which only its owner may read (as every secret file here, D4)."""
    if path is None:
        return None
    if not path.exists():
        raise StoreError(f"store password file {path} cannot be read (not found): create it (0600) with the "
                         "PostgreSQL password, or fix LLMC_STORE_PASSWORD_FILE")
    try:
        data = read_private_file(path, "store password file")
    except KeyFileError as exc:
        raise StoreError(f"{exc} (LLMC_STORE_PASSWORD_FILE)") from exc
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise StoreError(f"store password file {path} is not UTF-8 text") from exc


class PostgresStore(SqlStore):
    """The ``Store`` protocol on a PostgreSQL database, through a small async connection pool."""

    backend = "postgresql"

    def __init__(self, settings: StoreSettings, url: str) -> None:
        parts = urlsplit(url)
        if parts.password is not None:
            raise StoreError("the store URL carries a password: remove it from LLMC_STORE_URL and put it in the "
                             "file LLMC_STORE_PASSWORD_FILE names (0600); it would show in process lists and logs")
        if not parts.hostname or not parts.path.strip("/"):
            raise StoreError(f"store URL {url!r} is not postgresql://USER@HOST:PORT/DATABASE")
        self.url = url
        self._password_file = settings.password_file
        self._password: str | None = None
        self._pool: AsyncConnectionPool | None = None

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "llm-caller"}
        if self._password is not None:
            kwargs["password"] = self._password
        return kwargs

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        """A driver error as the operator's message: the redacted URL, what failed, never the password."""
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreError(f"store {self.url}: {doing} failed: {detail}. Check that the server is up and reachable, "
                          "and the user, database and password file (LLMC_STORE_PASSWORD_FILE)")

    # ---- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        self._password = _read_password(self._password_file)
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._kwargs())
        except psycopg.Error as exc:
            raise self._error(exc, "connecting") from exc
        try:
            await self._migrate(conn)
        except psycopg.Error as exc:
            raise self._error(exc, "bringing the schema up to date") from exc
        finally:
            await conn.close()
        pool = AsyncConnectionPool(self.url, kwargs=self._kwargs(), min_size=POOL_SIZE[0], max_size=POOL_SIZE[1],
                                   open=False, timeout=CONNECT_TIMEOUT_S * 2, name="llmc-store")
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise self._error(exc, "opening the connection pool") from exc
        self._pool = pool

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(statements(VERSION_TABLE, "postgresql")[0])
            cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM llmc_schema")
            row = await cursor.fetchone()
            found = int(row[0]) if row else 0
            check_version(found, self.url)
            for migration in pending(found):
                for sql in statements(migration.sql, "postgresql"):
                    await conn.execute(sql)
                await conn.execute("INSERT INTO llmc_schema (version, description, applied_at) VALUES (%s, %s, %s)",
                                   (migration.version, migration.description, time.time()))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def health(self) -> StoreHealth:
        try:
            await self._op(ping(), write=False)
        except (StoreError, ValueError) as exc:
            return StoreHealth(self.backend, False, str(exc))
        return StoreHealth(self.backend, True, f"{self.url}, schema version {SCHEMA_VERSION}")

    # ---- running one operation ----------------------------------------------------------------
    async def _op(self, op: ops.Op[T], write: bool = True) -> T:
        """One operation as one transaction on one pooled connection (committed unless it raised)."""
        if self._pool is None:
            raise StoreError(f"store {self.url} is not open")
        try:
            async with self._pool.connection() as conn, conn.cursor() as cursor:
                try:
                    query = next(op)
                    while True:
                        if query.many is not None:
                            await cursor.executemany(ops.pg_params(query.sql), query.many)
                        else:
                            await cursor.execute(ops.pg_params(query.sql), query.params)
                        rows = await cursor.fetchall() if cursor.description is not None else []
                        query = op.send(ops.Result(cursor.rowcount, rows))
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
        except psycopg.errors.IntegrityError as exc:
            raise ValueError(f"store {self.url}: {exc.diag.message_primary or type(exc).__name__}") from exc
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._error(exc, "a query") from exc


"""What only the PostgreSQL backend does: the password file, clear connection errors, migrating once.

Runs against the session's real server (``tests.pg_server``); skipped where PostgreSQL is not installed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from gateway.store.migrations import SCHEMA_VERSION
from gateway.store.postgres import PostgresStore
from gateway.store.records import StoreError
from shared.settings import StoreSettings
from tests.pg_server import PgServer


def _open_error(store: PostgresStore) -> str:
    async def go() -> str:
        with pytest.raises(StoreError) as caught:
            await store.open()
        return str(caught.value)
    return asyncio.run(go())


def test_a_password_in_the_url_is_refused_and_not_repeated(pg_server: PgServer) -> None:
    with pytest.raises(StoreError) as caught:
        PostgresStore(pg_server.settings(), f"postgresql://llmc:hunter2secret@127.0.0.1:{pg_server.port}/postgres")
    assert "LLMC_STORE_PASSWORD_FILE" in str(caught.value) and "hunter2secret" not in str(caught.value)


def test_a_wrong_password_is_a_clear_error_without_the_password(pg_server: PgServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password-4711\n")
    wrong.chmod(0o600)
    url, _settings = pg_server.fresh_database()
    message = _open_error(PostgresStore(StoreSettings(password_file=wrong), url))
    print(f"wrong password: {message}")
    assert url in message and "password authentication failed" in message and "LLMC_STORE_PASSWORD_FILE" in message
    assert "not-the-password-4711" not in message


def test_a_missing_password_file_is_a_clear_error(pg_server: PgServer, tmp_path: Path) -> None:
    url, _settings = pg_server.fresh_database()
    message = _open_error(PostgresStore(StoreSettings(password_file=tmp_path / "absent"), url))
    assert "store password file" in message and "absent" in message


def test_a_password_file_others_can_read_is_refused(pg_server: PgServer, tmp_path: Path) -> None:
    shared = tmp_path / "shared-password"
    shared.write_text(pg_server.password_file.read_text())
    shared.chmod(0o644)
    url, _settings = pg_server.fresh_database()
    message = _open_error(PostgresStore(StoreSettings(password_file=shared), url))
    assert "open to group or others (mode 0644)" in message and "chmod 600" in message
    assert pg_server.password_file.read_text().strip() not in message


def test_a_server_that_is_not_there_is_a_clear_error(pg_server: PgServer) -> None:
    closed = pg_server.url().replace(f":{pg_server.port}/", ":1/")
    message = _open_error(PostgresStore(pg_server.settings(), closed))
    print(f"no server: {message}")
    assert closed in message and "connecting failed" in message


def test_a_database_from_a_newer_version_is_refused(pg_server: PgServer) -> None:
    url, settings = pg_server.fresh_database()

    async def go() -> None:
        store = PostgresStore(settings, url)
        await store.open()
        await store.close()
    asyncio.run(go())
    _insert_future_version(pg_server, url)
    message = _open_error(PostgresStore(settings, url))
    assert f"newer than this llm-caller's {SCHEMA_VERSION}" in message and url in message


def _insert_future_version(server: PgServer, url: str) -> None:
    import psycopg

    with psycopg.connect(url, password=server.password_file.read_text().strip(), autocommit=True) as conn:
        conn.execute("INSERT INTO llmc_schema VALUES (%s, 'from the future', 0)", (SCHEMA_VERSION + 1,))


def test_gateways_starting_together_migrate_once(pg_server: PgServer) -> None:
    url, settings = pg_server.fresh_database()

    async def go() -> list[int]:
        stores = [PostgresStore(settings, url) for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        healths = await asyncio.gather(*(store.health() for store in stores))
        assert all(health.ok for health in healths), healths
        for store in stores:
            await store.close()
        return [health.detail.count(url) for health in healths]
    assert asyncio.run(go()) == [1, 1, 1, 1]
    import psycopg

    with psycopg.connect(url, password=pg_server.password_file.read_text().strip()) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM llmc_schema ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_health_says_what_is_wrong_once_the_server_goes_away(pg_server: PgServer) -> None:
    url, settings = pg_server.fresh_database()
    database = url.rsplit("/", 1)[1]

    async def go() -> tuple[bool, str]:
        store = PostgresStore(dataclasses.replace(settings), url)
        await store.open()
        try:
            pg_server.admin(f"DROP DATABASE {database} WITH (FORCE)")  # every connection of the pool is cut
            health = await store.health()
            return health.ok, health.detail
        finally:
            await store.close()
    ok, detail = asyncio.run(go())
    print(f"health after the database went: {detail}")
    assert not ok and url in detail and "failed" in detail

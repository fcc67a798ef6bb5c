"""What only the SQLite backend does: private files, its own thread, clear errors on a bad file."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from gateway.store import sqlite as sqlite_module
from gateway.store.migrations import SCHEMA_VERSION
from gateway.store.records import StoreError, TaskRow, TaskStatus
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_errors import explain


def _open_close(path: Path, task_id: str = "t") -> None:
    async def go() -> None:
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        await store.create_task(TaskRow(task_id, "c", "chat", TaskStatus.WORKING, 1.0, 1.0, None, 1000, "gw"))
        await store.close()
    asyncio.run(go())


def _open_error(path: Path) -> str:
    async def go() -> str:
        with pytest.raises(StoreError) as caught:
            await SqliteStore(f"sqlite:///{path}").open()
        return str(caught.value)
    return asyncio.run(go())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folder_and_files_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "store.db"

    async def go() -> None:
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        await store.create_task(TaskRow("t", "c", "chat", TaskStatus.WORKING, 1.0, 1.0, None, 1000, "gw"))
        modes = {p.name: _mode(p) for p in path.parent.iterdir()}
        assert modes == {"store.db": 0o600, "store.db-wal": 0o600, "store.db-shm": 0o600}
        await store.close()
    asyncio.run(go())
    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700


def test_open_applies_the_migrations_once_and_records_them(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _open_close(path)
    _open_close(path, "t2")  # a second open finds the schema current and keeps the data
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM llmc_schema ORDER BY version")]
        tasks = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert (tasks, journal) == (2, "wal")


def test_a_store_from_a_newer_version_is_refused_not_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _open_close(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO llmc_schema VALUES (?, 'from the future', 0)", (SCHEMA_VERSION + 1,))
    message = _open_error(path)
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this llm-caller's {SCHEMA_VERSION}" in message
    assert str(path) in message and "Upgrade llm-caller" in message
    with sqlite3.connect(path) as conn:  # untouched
        assert conn.execute("SELECT MAX(version) FROM llmc_schema").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not sqlite, just garbage bytes " * 200)
    message = _open_error(path)
    assert str(path) in message and "not a readable SQLite database" in message and "backup" in message


def test_a_damaged_database_fails_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _open_close(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # fold the WAL in, so the damage below is in the file
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 2
    with path.open("r+b") as handle:  # scribble over every page but the header page
        handle.seek(page_size)
        handle.write(b"\xa5" * page_size * (pages - 1))
    message = _open_error(path)
    assert str(path) in message and ("damaged" in message or "not a readable SQLite database" in message)


def test_a_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the folder should be")
    message = _open_error(blocker / "sub" / "store.db")
    assert "store folder" in message and "cannot be created" in message and "LLMC_STORE_URL" in message


def test_a_store_locked_past_the_busy_timeout_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 0.3)
    path = tmp_path / "store.db"
    _open_close(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        message = _open_error(path)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    print(f"locked store reported after {waited:.2f} s")
    assert "is locked by another process" in message and str(path) in message
    assert waited >= 0.3


def test_waiting_on_a_lock_does_not_block_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 10.0)
    path = tmp_path / "store.db"

    async def go() -> tuple[int, bool]:
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock: the store's insert must wait for it
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
        beat = asyncio.create_task(ticker())
        insert = asyncio.create_task(
            store.create_task(TaskRow("t", "c", "chat", TaskStatus.WORKING, 1.0, 1.0, None, 1000, "gw")))
        await asyncio.sleep(1.0)
        waiting = not insert.done()
        holder.execute("COMMIT")
        holder.close()
        await asyncio.wait_for(insert, 10)
        beat.cancel()
        await store.close()
        return ticks, waiting
    ticks, waiting = asyncio.run(go())
    print(f"event loop ticked {ticks} times (10 ms each) while the store waited 1 s for the lock")
    assert waiting and ticks >= 20


def test_sqlite_errors_read_as_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    _open_close(path)
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        readonly.execute("DELETE FROM tasks")
    readonly.close()
    message = str(explain(caught.value, path))
    assert "read-only" in message and "write access" in message and str(path) in message


def test_a_url_that_is_not_an_absolute_path_is_refused() -> None:
    for url in ("sqlite://host/store.db", "sqlite:relative.db", "sqlite:///x.db?mode=ro"):
        with pytest.raises(StoreError, match="sqlite:///ABSOLUTE/PATH"):
            SqliteStore(url)

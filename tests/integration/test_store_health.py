"""A store that cannot be used does not take the gateway down: through the real stack.

A corrupt store file, one written by a newer llm-caller, and one locked by another process:
the gateway starts, plain chat works, ``getHealth`` names the store problem, and the
gateway's log has exactly one line about it. A lock that goes away heals by itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.store.migrations import SCHEMA_VERSION
from gateway.store.sqlite import SqliteStore
from harness.sandbox import Sandbox
from shared.tool_names import GET_HEALTH
from tests.integration.conftest import run
from tests.pg_server import PgServer

pytestmark = pytest.mark.integration

# Another process that takes the store file's lock and keeps it until its stdin closes.
_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def _make_store(path: Path) -> None:
    async def go() -> None:
        store = SqliteStore(f"sqlite:///{path}")
        await store.open()
        await store.close()
    asyncio.run(go())


async def _health_and_chat(box: Sandbox) -> tuple[dict[str, Any], bool]:
    async with box.client() as client:
        health = await client.call_tool(GET_HEALTH, {})
        chat = await client.call_tool("chat", {"prompt": "still there?"})
    return (health.structured_content or {}), bool(chat.is_error)


def _store_lines(box: Sandbox) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in (box.log_dir / "gateway.log").read_bytes().splitlines() if line.strip()]
    return [line for line in lines if str(line.get("event", "")).startswith("store_")]


def _check_reported(box: Sandbox, expected: str) -> dict[str, Any]:
    health, chat_failed = run(_health_and_chat(box))
    store = health["store"]
    print(f"getHealth store: {store}")
    assert not chat_failed, "a plain chat call must not need the store"
    assert (store["backend"], store["ok"]) == ("sqlite", False)
    assert expected in store["detail"]
    time.sleep(6.0)  # past one background check: a store still broken adds no line
    lines = _store_lines(box)
    print(f"store lines in gateway.log: {lines}")
    assert [line["event"] for line in lines] == ["store_unavailable"]
    assert expected in lines[0]["problem"]
    return store


@pytest.mark.parametrize("damage", ["garbage", "newer"])
def test_a_bad_store_file_leaves_the_gateway_serving(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "state" / "store.db"
    if damage == "garbage":
        path.parent.mkdir()
        path.write_bytes(b"these are garbage bytes, not SQLite\n" * 300)
        expected = "not a readable SQLite database"
    else:
        _make_store(path)
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO llmc_schema VALUES (?, 'from a newer release', 0)", (SCHEMA_VERSION + 1,))
        expected = f"schema version {SCHEMA_VERSION + 1}, newer than this llm-caller's {SCHEMA_VERSION}"
    with Sandbox(heartbeat_s=0.25, env={"LLMC_STORE_URL": f"sqlite:///{path}"}) as box:
        box.wait_workers_up()
        store = _check_reported(box, expected)
        assert str(path) in store["detail"]


def test_a_locked_store_is_reported_then_heals_when_the_lock_goes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "store.db"
    _make_store(path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with Sandbox(heartbeat_s=0.25, env={"LLMC_STORE_URL": f"sqlite:///{path}"}) as box:
            box.wait_workers_up()
            _check_reported(box, "is locked by another process")
            assert holder.stdin is not None
            holder.stdin.close()  # the other process lets go
            holder.wait(timeout=10)
            started, store = time.monotonic(), {}
            while time.monotonic() - started < 30:
                store = run(_health_and_chat(box))[0]["store"]
                if store["ok"]:
                    break
                time.sleep(0.5)
            print(f"store healthy again {time.monotonic() - started:.1f} s after the lock went: {store}")
            assert store["ok"] and str(path) in store["detail"]
            assert [line["event"] for line in _store_lines(box)] == ["store_unavailable", "store_open",
                                                                     "store_health"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_default_store_is_a_private_sqlite_file_in_the_run_folder() -> None:
    with Sandbox(heartbeat_s=0.25) as box:
        box.wait_workers_up()
        health, chat_failed = run(_health_and_chat(box))
        path = box.stack.settings.run_dir / "store.db"
        print(f"default store: {health['store']}; files: "
              f"{ {p.name: oct(p.stat().st_mode & 0o777) for p in path.parent.glob('store.db*')} }")
        assert not chat_failed
        expected = {"backend": "sqlite", "ok": True, "detail": f"{path}, schema version {SCHEMA_VERSION}"}
        assert health["store"] == expected
        assert path.stat().st_mode & 0o777 == 0o600
        assert [line["event"] for line in _store_lines(box)] == ["store_open"]


def test_a_gateway_on_postgresql_is_healthy_and_never_shows_the_password(pg_server: PgServer) -> None:
    url, settings = pg_server.fresh_database()
    password = pg_server.password_file.read_text().strip()
    env = {"LLMC_STORE_URL": url, "LLMC_STORE_PASSWORD_FILE": str(settings.password_file)}
    with Sandbox(heartbeat_s=0.25, env=env) as box:
        box.wait_workers_up()
        health, chat_failed = run(_health_and_chat(box))
        print(f"store on PostgreSQL: {health['store']}")
        assert not chat_failed
        assert health["store"] == {"backend": "postgresql", "ok": True,
                                   "detail": f"{url}, schema version {SCHEMA_VERSION}"}
        assert [line["event"] for line in _store_lines(box)] == ["store_open"]
        logs = b"".join(p.read_bytes() for p in box.log_dir.iterdir() if p.is_file())
        assert password.encode() not in logs and password not in orjson.dumps(health).decode()

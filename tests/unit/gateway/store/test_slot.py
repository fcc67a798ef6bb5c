"""The gateway's hold on its store: a failure at start-up is one log line and a health answer, and heals."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.store import StoreSlot, open_store
from shared import errors
from shared.settings import Settings


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env({"LLMC_STORE_URL": url, "LLMC_RUN_DIR": str(tmp_path / "run")})


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.store" and r.getMessage() == name]


def test_a_corrupt_store_is_reported_once_and_reopened_once_it_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"\x00garbage, not a database\x00" * 100)
    caplog.set_level(logging.INFO, logger="gateway.store")

    async def go() -> None:
        slot = await open_store(_settings(tmp_path, f"sqlite:///{path}"))
        assert slot.store is None
        assert (slot.cached.backend, slot.cached.ok) == ("sqlite", False)
        assert "not a readable SQLite database" in slot.cached.detail and str(path) in slot.cached.detail
        with pytest.raises(errors.Unavailable, match="not a readable SQLite database"):
            slot.get()
        for _ in range(3):  # still broken: no new line per check
            assert not (await slot.refresh()).ok
        assert len(_events(caplog, "store_unavailable")) == 1 and _events(caplog, "store_health") == []
        path.unlink()  # the operator moves the damaged file aside
        health = await slot.refresh()
        assert health.ok and slot.cached == health and str(path) in health.detail
        assert slot.get().backend == "sqlite"
        assert [r.levelno for r in _events(caplog, "store_health")] == [logging.INFO]
        await slot.close()
    asyncio.run(go())


def test_an_unknown_scheme_is_reported_and_never_retried(tmp_path: Path) -> None:
    async def go() -> None:
        slot = await open_store(_settings(tmp_path, "mysql://db/x"))
        assert not slot.cached.ok and "unknown store URL scheme 'mysql'" in slot.cached.detail
        assert not (await slot.refresh()).ok
    asyncio.run(go())


def test_watch_keeps_the_cached_health_current(tmp_path: Path) -> None:
    async def go() -> None:
        slot = await open_store(_settings(tmp_path, f"sqlite:///{tmp_path / 'ok.db'}"))
        assert slot.cached.ok and "schema version" in slot.cached.detail
        watcher = asyncio.create_task(slot.watch(0.01))
        assert slot.store is not None
        await slot.store.close()  # the store goes away under the gateway
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not slot.cached.ok:
                break
        watcher.cancel()
        assert not slot.cached.ok and "not open" in slot.cached.detail
    asyncio.run(go())


def test_a_slot_without_a_store_says_why() -> None:
    slot = StoreSlot(None, "no store was opened")
    assert (slot.cached.ok, slot.cached.detail) == (False, "no store was opened")

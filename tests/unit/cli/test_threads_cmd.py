"""``llm-caller threads list | delete``: the operator's view of the store's threads.

The store is a ``MemoryStore`` filled beforehand and handed to ``open_store`` through the
one table of backends (``LLMC_STORE_URL=memory:``), as a file or server store would be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from gateway import store as store_module
from gateway.store.memory import MemoryStore
from gateway.store.records import ThreadRow, TurnRow
from gateway.threads import LOCAL_CLIENT

Run = Callable[..., tuple[int, str, str]]
ALICE = "th_" + "a" * 32
LOCAL = "th_" + "b" * 32


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> MemoryStore:
    """A store holding one thread of the registry's client ``demo`` and one local thread."""
    kept = MemoryStore()
    now = 4_000_000_000.0  # far ahead: nothing expires during the test

    async def fill() -> None:
        for thread_id, owner in ((ALICE, "demo"), (LOCAL, LOCAL_CLIENT)):
            await kept.create_thread(ThreadRow(thread_id, owner, now, now, None))
            for seq, (provider, model) in enumerate((("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"))):
                turn = TurnRow(seq, b'[{"role": "user", "content": "secret words"}]', 7, provider, model, now)
                await kept.append_turn(thread_id, owner, turn, now, expires_at=now + 3600)

    asyncio.run(fill())
    monkeypatch.setitem(store_module.BACKENDS, "memory", lambda _settings, _url: kept)
    monkeypatch.setenv("LLMC_STORE_URL", "memory:")
    monkeypatch.setenv("LLMC_CONFIG_DIR", str(config_dir))
    return kept


def _registry_has_demo(config_dir: Path) -> None:
    file = config_dir / "client-registry.json"
    data = orjson.loads(file.read_bytes())
    data["clients"]["demo"] = {"token_sha256": "0" * 64}
    file.write_bytes(orjson.dumps(data))


def test_list_shows_every_clients_threads_and_never_their_messages(run: Run, store: MemoryStore,
                                                                   config_dir: Path) -> None:
    _registry_has_demo(config_dir)
    code, out, err = run("threads", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["CLIENT", "THREAD", "TURNS", "TOKENS", "DROPPED"]
    assert [line.split()[:4] for line in lines[1:]] == [["demo", ALICE, "2", "14"], [LOCAL_CLIENT, LOCAL, "2", "14"]]
    assert "openai/gpt-4o-mini,anthropic/claude-haiku-4-5" in out and "secret" not in out


def test_list_for_one_client_as_json(run: Run, store: MemoryStore) -> None:
    code, out, err = run("threads", "list", "--client", LOCAL_CLIENT, "--json")
    assert code == 0, err
    data = orjson.loads(out)
    assert [(t["client"], t["thread_id"], t["turns"]) for t in data] == [(LOCAL_CLIENT, LOCAL, 2)]


def test_delete_needs_the_owner_and_says_what_happened(run: Run, store: MemoryStore) -> None:
    code, _, err = run("threads", "delete", ALICE, "--client", "someone-else")
    assert code == 2 and "client someone-else has no thread" in err
    code, out, err = run("threads", "delete", ALICE, "--client", "demo")
    assert code == 0 and f"deleted thread {ALICE} of client demo" in out, err
    assert asyncio.run(store.list_threads("demo", 0)) == []


def test_an_unopenable_store_is_one_clear_line(run: Run, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> None:
    monkeypatch.setenv("LLMC_STORE_URL", "nosuch://x")
    code, _, err = run("threads", "list", "--config-dir", str(config_dir))
    assert code == 2 and "cannot open the gateway's store: unknown store URL scheme 'nosuch'" in err
    assert "Traceback" not in err


def test_the_command_names_the_local_owner_as_the_gateway_does() -> None:
    from cli import threads_cmd

    assert threads_cmd._LOCAL == LOCAL_CLIENT

"""The ``threads`` tool's answers: a client's own threads, newest first, with their models; deletes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.store.memory import MemoryStore
from gateway.store.records import ThreadRow, TurnRow
from gateway.threads_tool import ThreadsInput, run_threads
from tests.unit.gateway.service_fakes import run

OLD, NEW, BOBS = ("th_" + c * 32 for c in "abc")
NOW = 1_000.0


def _store() -> MemoryStore:
    store = MemoryStore()

    async def fill() -> None:
        for thread_id, owner, at in ((OLD, "alice", 10.0), (NEW, "alice", 20.0), (BOBS, "bob", 30.0)):
            await store.create_thread(ThreadRow(thread_id, owner, at, at, None))
            for seq, model in enumerate(("gpt-4o-mini", "gpt-4o-mini", "claude-haiku-4-5")):
                provider = "anthropic" if model.startswith("claude") else "openai"
                await store.append_turn(thread_id, owner, TurnRow(seq, b"[]", 5, provider, model, at), at,
                                        expires_at=at + 3600)

    run(fill())
    return store


def test_list_shows_only_the_callers_threads_most_recent_first() -> None:
    listed = run(run_threads(_store(), "alice", ThreadsInput(), NOW)).threads
    assert [t.thread_id for t in listed] == [NEW, OLD]
    assert listed[0].models == ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    assert (listed[0].turns, listed[0].tokens, listed[0].expires_at) == (3, 15, 3620.0)


def test_delete_removes_only_the_callers_own_thread() -> None:
    store = _store()
    assert run(run_threads(store, "alice", ThreadsInput(action="delete", thread_id=BOBS))).deleted is False
    assert run(run_threads(store, "alice", ThreadsInput(action="delete", thread_id=OLD))).deleted is True
    assert [t.thread_id for t in run(run_threads(store, "alice", ThreadsInput(), NOW)).threads] == [NEW]
    assert [t.thread_id for t in run(run_threads(store, "bob", ThreadsInput(), NOW)).threads] == [BOBS]


@pytest.mark.parametrize(("arguments", "says"), [
    ({"action": "delete"}, '"delete" needs "thread_id"'),
    ({"thread_id": OLD}, '"thread_id" is for "delete" only'),
    ({"action": "delete", "thread_id": "th_../../x"}, "String should match pattern"),
])
def test_bad_arguments_are_refused_by_name(arguments: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ThreadsInput.model_validate(arguments)

"""The ``Store`` contract, run unchanged against every backend (memory, sqlite, postgresql).

Each case opens a store on an empty database, drives the protocol with explicit times, and
checks what the protocol's docstrings promise: isolation by client, TTL expiry, conditional
updates that say whether they applied, leases, purge cascades, turn order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.store.base import Store
from gateway.store.records import TaskRow, TaskStatus, ThreadRow, TurnRow
from tests.unit.gateway.store.conftest import Backend

Race = Callable[[Store, Store], Awaitable[list[bool]]]


def _task(task_id: str = "t1", client: str = "alice", owner: str = "gw1", ttl_ms: int | None = 60_000,
          created_at: float = 100.0) -> TaskRow:
    return TaskRow(task_id, client, "chat", TaskStatus.WORKING, created_at, created_at, ttl_ms, 1000, owner)


def _thread(thread_id: str = "th1", client: str = "alice", expires_at: float | None = 1000.0,
            at: float = 100.0) -> ThreadRow:
    return ThreadRow(thread_id, client, at, at, expires_at)


def _turn(seq: int, tokens: int = 10, at: float = 101.0) -> TurnRow:
    return TurnRow(seq, b'[{"role":"user","content":"q%d"}]' % seq, tokens, "openai", "gpt-4o-mini", at)


# ---- tasks -----------------------------------------------------------------------------
def test_a_created_task_reads_back_whole_and_only_for_its_client(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        row = _task()
        row.status_message = "queued"
        await store.create_task(row)
        got = await store.get_task("t1", "alice", 100.0)
        assert got == row
        assert await store.get_task("t1", "bob", 100.0) is None
        assert await store.get_task("nope", "alice", 100.0) is None
    backend.run(scenario)


def test_a_task_id_is_created_once(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task())
        with pytest.raises(ValueError):
            await store.create_task(_task(client="bob"))
        got = await store.get_task("t1", "alice", 100.0)
        assert got is not None and got.client == "alice"
    backend.run(scenario)


def test_a_task_expires_at_created_plus_ttl_and_without_ttl_never(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task("short", ttl_ms=1500))
        await store.create_task(_task("forever", ttl_ms=None))
        assert await store.get_task("short", "alice", 101.499) is not None
        assert await store.get_task("short", "alice", 101.5) is None
        assert await store.get_task("forever", "alice", 10.0**9) is not None
    backend.run(scenario)


def test_progress_changes_only_a_working_task(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task())
        assert await store.set_task_progress("t1", "12 chunks", 105.0)
        got = await store.get_task("t1", "alice", 106.0)
        assert got is not None and (got.status_message, got.updated_at) == ("12 chunks", 105.0)
        assert await store.finish_task("t1", TaskStatus.COMPLETED, 107.0, result=b'{"ok":1}')
        assert not await store.set_task_progress("t1", "late", 108.0)
        assert not await store.set_task_progress("missing", "x", 108.0)
        got = await store.get_task("t1", "alice", 109.0)
        assert got is not None and got.status_message == "12 chunks"
    backend.run(scenario)


def test_finish_applies_once_and_keeps_the_outcome(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task("ok"))
        await store.create_task(_task("bad"))
        await store.set_task_progress("ok", "halfway", 101.0)
        assert await store.finish_task("ok", TaskStatus.COMPLETED, 102.0, result=b'{"content":[]}')
        assert not await store.finish_task("ok", TaskStatus.FAILED, 103.0, error=b'{"code":-1}')
        assert await store.finish_task("bad", TaskStatus.FAILED, 102.5, status_message="worker lost",
                                       error=b'{"code":-32603}')
        assert not await store.finish_task("missing", TaskStatus.COMPLETED, 104.0)
        ok = await store.get_task("ok", "alice", 105.0)
        bad = await store.get_task("bad", "alice", 105.0)
        assert ok is not None and bad is not None
        assert (ok.status, ok.result, ok.error, ok.status_message, ok.updated_at) == (
            TaskStatus.COMPLETED, b'{"content":[]}', None, "halfway", 102.0)
        assert (bad.status, bad.error, bad.status_message, bad.terminal) == (
            TaskStatus.FAILED, b'{"code":-32603}', "worker lost", True)
    backend.run(scenario)


def test_cancel_flags_a_working_task_of_its_client_once(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task("a", owner="gw1"))
        await store.create_task(_task("b", owner="gw2"))
        await store.create_task(_task("done", owner="gw1"))
        await store.finish_task("done", TaskStatus.COMPLETED, 101.0, result=b"{}")
        assert await store.request_cancel("a", "bob", 102.0) is None
        flagged = await store.request_cancel("a", "alice", 102.0)
        assert flagged is not None and flagged.cancel_requested and flagged.updated_at == 102.0
        again = await store.request_cancel("a", "alice", 103.0)
        assert again is not None and again.cancel_requested and again.updated_at == 102.0
        finished = await store.request_cancel("done", "alice", 103.0)
        assert finished is not None and not finished.cancel_requested and finished.status is TaskStatus.COMPLETED
        assert await store.request_cancel("missing", "alice", 103.0) is None
        assert await store.cancels_for("gw1") == ["a"]
        assert await store.cancels_for("gw2") == []
        await store.finish_task("a", TaskStatus.CANCELLED, 104.0)
        assert await store.cancels_for("gw1") == []
    backend.run(scenario)


def test_cancel_of_an_expired_task_is_not_found(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task(ttl_ms=1000))
        assert await store.request_cancel("t1", "alice", 101.0) is None
        assert await store.cancels_for("gw1") == []
    backend.run(scenario)


def test_orphans_are_the_working_tasks_whose_owner_lease_lapsed(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task("live", owner="gw-live"))
        await store.create_task(_task("stale", owner="gw-stale"))
        await store.create_task(_task("never", owner="gw-never"))
        await store.create_task(_task("finished", owner="gw-stale"))
        await store.finish_task("finished", TaskStatus.COMPLETED, 101.0, result=b"{}")
        await store.beat("gw-stale", 100.0)
        await store.beat("gw-live", 100.0)
        await store.beat("gw-live", 109.0)  # a beat renews the lease
        assert await store.fail_orphans(110.0, 10.0, b'{"reason":"gone"}', "its gateway stopped") == 1  # never
        assert await store.fail_orphans(110.5, 10.0, b'{"reason":"gone"}', "its gateway stopped") == 1  # stale
        for task_id in ("never", "stale"):
            got = await store.get_task(task_id, "alice", 111.0)
            assert got is not None
            assert (got.status, got.error, got.status_message) == (
                TaskStatus.FAILED, b'{"reason":"gone"}', "its gateway stopped")
        live = await store.get_task("live", "alice", 111.0)
        finished = await store.get_task("finished", "alice", 111.0)
        assert live is not None and live.status is TaskStatus.WORKING
        assert finished is not None and finished.status is TaskStatus.COMPLETED
    backend.run(scenario)


# ---- purge -----------------------------------------------------------------------------
def test_purge_deletes_expired_rows_with_their_turns_and_blobs(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_task(_task("old", ttl_ms=1000))
        await store.create_task(_task("new", ttl_ms=600_000))
        await store.create_thread(_thread("gone", expires_at=150.0))
        await store.create_thread(_thread("kept", expires_at=None))
        for thread_id in ("gone", "kept"):
            assert await store.append_turn(thread_id, "alice", _turn(0), 101.0,
                                           expires_at=150.0 if thread_id == "gone" else None)
            assert await store.append_turn(thread_id, "alice", _turn(1), 102.0,
                                           expires_at=150.0 if thread_id == "gone" else None)
            await store.put_blob(thread_id, "sha256:aa", "image/png", b"\x89PNG")
        # old task, gone thread, its two turns and its blob
        assert await store.purge(200.0) == 5
        assert await store.purge(200.0) == 0
        assert await store.get_task("new", "alice", 120.0) is not None
        assert await store.get_blob("gone", "sha256:aa") is None
        assert await store.get_blob("kept", "sha256:aa") == ("image/png", b"\x89PNG")
        kept = await store.get_thread("kept", "alice", 200.0)
        assert kept is not None and [t.seq for t in kept[1]] == [0, 1]
    backend.run(scenario)


# ---- threads ---------------------------------------------------------------------------
def test_a_thread_reads_back_empty_and_only_for_its_client_while_live(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread(expires_at=500.0))
        got = await store.get_thread("th1", "alice", 100.0)
        assert got == (_thread(expires_at=500.0), [])
        assert await store.get_thread("th1", "bob", 100.0) is None
        assert await store.get_thread("th1", "alice", 500.0) is None
        with pytest.raises(ValueError):
            await store.create_thread(_thread(client="bob"))
    backend.run(scenario)


def test_append_takes_only_the_next_sequence_number(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread())
        assert await store.append_turn("th1", "alice", _turn(0, tokens=7), 101.0, expires_at=900.0)
        assert not await store.append_turn("th1", "alice", _turn(0), 102.0, expires_at=900.0)  # taken
        assert not await store.append_turn("th1", "alice", _turn(2), 102.0, expires_at=900.0)  # a gap
        assert not await store.append_turn("th1", "bob", _turn(1), 102.0, expires_at=900.0)  # not bob's
        assert await store.append_turn("th1", "alice", _turn(1, tokens=5), 103.0, expires_at=None)
        got = await store.get_thread("th1", "alice", 104.0)
        assert got is not None
        thread, turns = got
        assert (thread.turns, thread.tokens, thread.next_seq, thread.updated_at, thread.expires_at) == (
            2, 12, 2, 103.0, None)
        assert turns == [_turn(0, tokens=7), _turn(1, tokens=5)]
    backend.run(scenario)


def test_append_to_an_expired_thread_is_refused(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread(expires_at=150.0))
        assert not await store.append_turn("th1", "alice", _turn(0), 150.0, expires_at=300.0)
        assert not await store.append_turn("missing", "alice", _turn(0), 120.0, expires_at=300.0)
    backend.run(scenario)


def test_drop_before_seq_trims_the_front_and_counts_it(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread())
        for seq in range(4):
            assert await store.append_turn("th1", "alice", _turn(seq, tokens=10 + seq), 101.0 + seq, expires_at=900.0)
        assert await store.append_turn("th1", "alice", _turn(4, tokens=20), 110.0, expires_at=950.0,
                                       drop_before_seq=3)
        got = await store.get_thread("th1", "alice", 111.0)
        assert got is not None
        thread, turns = got
        assert [t.seq for t in turns] == [3, 4]
        assert (thread.turns, thread.tokens, thread.dropped_turns, thread.next_seq, thread.expires_at) == (
            2, 33, 3, 5, 950.0)
        assert await store.append_turn("th1", "alice", _turn(5), 112.0, expires_at=950.0, drop_before_seq=3)
        got = await store.get_thread("th1", "alice", 113.0)
        assert got is not None and got[0].dropped_turns == 3 and got[0].turns == 3
    backend.run(scenario)


def test_list_threads_is_the_clients_live_threads_newest_first(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread("a", at=100.0))
        await store.create_thread(_thread("b", at=101.0))
        await store.create_thread(_thread("c", at=102.0))
        await store.create_thread(_thread("expired", at=103.0, expires_at=120.0))
        await store.create_thread(_thread("bobs", client="bob", at=104.0))
        assert await store.append_turn("a", "alice", _turn(0), 110.0, expires_at=1000.0)
        listed = await store.list_threads("alice", 130.0)
        assert [t.thread_id for t in listed] == ["a", "c", "b"]
        assert listed[0].turns == 1 and listed[0].updated_at == 110.0
        assert [t.thread_id for t in await store.list_threads("bob", 130.0)] == ["bobs"]
        assert await store.list_threads("carol", 130.0) == []
    backend.run(scenario)


def test_delete_thread_takes_its_turns_and_blobs_and_only_for_its_client(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread())
        assert await store.append_turn("th1", "alice", _turn(0), 101.0, expires_at=900.0)
        await store.put_blob("th1", "sha256:bb", "image/jpeg", b"\xff\xd8")
        assert not await store.delete_thread("th1", "bob")
        assert await store.get_blob("th1", "sha256:bb") == ("image/jpeg", b"\xff\xd8")
        assert await store.delete_thread("th1", "alice")
        assert not await store.delete_thread("th1", "alice")
        assert await store.get_thread("th1", "alice", 102.0) is None
        assert await store.get_blob("th1", "sha256:bb") is None
        # A new thread under the same id starts empty: no turn or blob of the old one is left.
        await store.create_thread(_thread())
        assert await store.get_thread("th1", "alice", 102.0) == (_thread(), [])
        assert await store.get_blob("th1", "sha256:bb") is None
    backend.run(scenario)


def test_a_blob_is_kept_once_per_digest(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        await store.create_thread(_thread())
        await store.put_blob("th1", "sha256:cc", "image/png", b"first")
        await store.put_blob("th1", "sha256:cc", "image/png", b"second")
        assert await store.get_blob("th1", "sha256:cc") == ("image/png", b"first")
        assert await store.get_blob("th1", "sha256:dd") is None
        assert await store.get_blob("other", "sha256:cc") is None
    backend.run(scenario)


def test_health_is_ok_on_an_open_store(backend: Backend) -> None:
    async def scenario(store: Store) -> None:
        health = await store.health()
        assert (health.backend, health.ok) == (backend.name, True)
        assert health.detail
    backend.run(scenario)


# ---- two store objects on one database ------------------------------------------------------
def test_two_stores_racing_to_finish_one_task_exactly_one_wins(backend: Backend) -> None:
    async def scenario(first: Store, second: Store) -> list[bool]:
        await first.create_task(_task())
        wins = await asyncio.gather(
            first.finish_task("t1", TaskStatus.COMPLETED, 101.0, result=b'{"by":1}'),
            second.finish_task("t1", TaskStatus.FAILED, 101.0, error=b'{"by":2}'))
        got = await second.get_task("t1", "alice", 102.0)
        assert got is not None
        assert (got.status is TaskStatus.COMPLETED) == wins[0]
        return list(wins)
    for _ in range(5 if backend.name != "memory" else 1):
        wins = backend.run_two(lambda a, b: _fresh(a, b, scenario))
        assert sorted(wins) == [False, True]


def test_two_stores_racing_to_append_one_turn_exactly_one_wins(backend: Backend) -> None:
    async def scenario(first: Store, second: Store) -> list[bool]:
        await first.create_thread(_thread())
        wins = await asyncio.gather(
            first.append_turn("th1", "alice", _turn(0, tokens=1), 101.0, expires_at=900.0),
            second.append_turn("th1", "alice", _turn(0, tokens=2), 101.0, expires_at=900.0))
        got = await first.get_thread("th1", "alice", 102.0)
        assert got is not None
        thread, turns = got
        assert (thread.turns, thread.next_seq, len(turns)) == (1, 1, 1)
        assert turns[0].tokens == (1 if wins[0] else 2)
        return list(wins)
    for _ in range(5 if backend.name != "memory" else 1):
        wins = backend.run_two(lambda a, b: _fresh(a, b, scenario))
        assert sorted(wins) == [False, True]


async def _fresh(first: Store, second: Store, scenario: Race) -> list[bool]:
    """Run a race scenario on rows no earlier round made (the database is shared across rounds)."""
    await first.delete_thread("th1", "alice")
    await first.purge(10.0**12)  # every task with a TTL is past it by then
    return await scenario(first, second)


def test_data_outlive_the_store_object(durable: Backend) -> None:
    async def write(store: Store) -> None:
        await store.create_task(_task())
        await store.finish_task("t1", TaskStatus.COMPLETED, 101.0, result=b'{"kept":true}')
        await store.create_thread(_thread())
        assert await store.append_turn("th1", "alice", _turn(0), 102.0, expires_at=900.0)

    async def read(store: Store) -> None:
        task = await store.get_task("t1", "alice", 103.0)
        assert task is not None and task.result == b'{"kept":true}'
        thread = await store.get_thread("th1", "alice", 103.0)
        assert thread is not None and thread[1] == [_turn(0)]
    durable.run(write)
    durable.run(read)

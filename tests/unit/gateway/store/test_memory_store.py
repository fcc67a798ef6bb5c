"""The in-process store keeps the ``Store`` protocol (the contract suite runs every backend)."""

from __future__ import annotations

import asyncio

from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.records import TaskRow, TaskStatus


def test_memory_store_is_a_store_and_hides_other_clients_tasks() -> None:
    store: Store = MemoryStore()  # mypy checks the protocol here

    async def scenario() -> None:
        row = TaskRow("t1", "alice", "chat", TaskStatus.WORKING, 100.0, 100.0, 60_000, 1000, "gw1")
        await store.create_task(row)
        assert await store.get_task("t1", "bob", 101.0) is None
        got = await store.get_task("t1", "alice", 101.0)
        assert got is not None and got.status is TaskStatus.WORKING
        assert await store.finish_task("t1", TaskStatus.COMPLETED, 102.0, result=b"{}")
        assert not await store.finish_task("t1", TaskStatus.FAILED, 103.0, error=b"{}")
        assert await store.get_task("t1", "alice", 161.0) is None  # past its TTL

    asyncio.run(scenario())

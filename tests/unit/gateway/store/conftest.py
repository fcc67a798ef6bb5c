"""Every store backend behind one fixture: the contract tests run the same cases on each.

``backend`` gives a factory of fresh, unopened stores on one empty database (two calls
give two store objects on the same database, for the race tests). PostgreSQL comes from
the session's real server (``tests.pg_server``), a fresh database per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import SqliteStore

T = TypeVar("T")


@dataclass
class Backend:
    """A named way to make stores on one shared, initially empty database."""

    name: str
    make: Callable[[], Store]

    def run(self, scenario: Callable[[Store], Awaitable[T]]) -> T:
        """Open a store, run ``scenario`` on it in a fresh event loop, close it."""
        async def play() -> T:
            store = self.make()
            await store.open()
            try:
                return await scenario(store)
            finally:
                await store.close()
        return asyncio.run(play())

    def run_two(self, scenario: Callable[[Store, Store], Awaitable[T]]) -> T:
        """Two store objects (two connections) on the same database."""
        async def play() -> T:
            first, second = self.make(), self.make()
            await first.open()
            await second.open()
            try:
                return await scenario(first, second)
            finally:
                await first.close()
                await second.close()
        return asyncio.run(play())


def _memory(_tmp: Path, _request: pytest.FixtureRequest) -> Callable[[], Store]:
    shared = MemoryStore()  # one database: every "new" store is the same object
    return lambda: _Shared(shared)


def _sqlite(tmp: Path, _request: pytest.FixtureRequest) -> Callable[[], Store]:
    url = f"sqlite:///{tmp / 'state' / 'store.db'}"
    return lambda: SqliteStore(url)


def _postgresql(_tmp: Path, request: pytest.FixtureRequest) -> Callable[[], Store]:
    from gateway.store.postgres import PostgresStore
    from tests.pg_server import PgServer

    server: PgServer = request.getfixturevalue("pg_server")
    url, settings = server.fresh_database()
    return lambda: PostgresStore(settings, url)


class _Shared(MemoryStore):
    """A view of one MemoryStore, so that 'two stores on one database' works for memory too."""

    def __init__(self, target: MemoryStore) -> None:
        super().__init__()
        self._tasks, self._leases = target._tasks, target._leases
        self._threads, self._turns, self._blobs = target._threads, target._turns, target._blobs
        self._ledger, self._days, self._holds = target._ledger, target._days, target._holds


_FACTORIES = {"memory": _memory, "sqlite": _sqlite, "postgresql": _postgresql}


@pytest.fixture(params=sorted(_FACTORIES))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name: str = request.param
    yield Backend(name, _FACTORIES[name](tmp_path, request))


@pytest.fixture(params=["sqlite", "postgresql"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backends whose data outlive the store object (and the process)."""
    name: str = request.param
    yield Backend(name, _FACTORIES[name](tmp_path, request))

"""The gateway's hold on its store: the backend table, opening by URL, and ``StoreSlot``."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.records import StoreError, StoreHealth
from gateway.store.sqlite import SqliteStore
from shared import errors
from shared.logs import log_event
from shared.settings import Settings

__all__ = ["BACKENDS", "HEALTH_INTERVAL_S", "Store", "StoreError", "StoreSlot", "open_store", "redact_url"]

log = logging.getLogger("gateway.store")

# How often the gateway checks its store in the background (getHealth shows the last answer).
HEALTH_INTERVAL_S = 5.0

# The one table of backends, by URL scheme: a new backend is a module and a line here.
BACKENDS: dict[str, Callable[[Settings, str], Store]] = {
    "memory": lambda _settings, _url: MemoryStore(),
    "sqlite": lambda _settings, url: SqliteStore(url),
    "postgresql": lambda settings, url: _postgres(settings, url),
}


def _postgres(settings: Settings, url: str) -> Store:
    """Imported only when configured: a gateway on SQLite never loads the PostgreSQL driver."""
    from gateway.store.postgres import PostgresStore

    return PostgresStore(settings.store, url)


def redact_url(url: str) -> str:
    """The URL without any password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class StoreSlot:
    """What the gateway holds: the open store, or why there is none, and its last health check.

    A store that cannot be opened does not stop the gateway: stateless calls keep working,
    ``getHealth`` shows the problem, and a call that needs the store (a task, a thread) gets
    an ``unavailable`` error naming it. ``watch`` keeps ``cached`` fresh in the background
    (``getHealth`` is synchronous and must not wait on a disk or a server) and opens the store
    again while it is unavailable, so a store that was locked at start-up comes back by itself.
    """

    def __init__(self, store: Store | None, problem: str | None = None,
                 reopen: Callable[[], Awaitable[Store]] | None = None, backend: str = "none") -> None:
        self.store = store
        self.problem = problem
        self._reopen = reopen
        if store is None:
            self.cached = StoreHealth(backend, False, problem or "not configured")
        else:
            self.cached = StoreHealth(store.backend, True, "opened")

    def get(self) -> Store:
        """The store, or ``Unavailable`` with the operator-facing reason."""
        if self.store is None:
            raise errors.Unavailable(f"the gateway's store is not available: {self.problem or 'not configured'}")
        return self.store

    async def health(self) -> StoreHealth:
        if self.store is None:
            return StoreHealth(self.cached.backend, False, self.problem or "not configured")
        return await self.store.health()

    async def refresh(self) -> StoreHealth:
        """Check the store now (opening it if it is not open) and keep the answer in ``cached``."""
        if self.store is None and self._reopen is not None:
            try:
                self.store = await self._reopen()
                self.problem = None
                log_event(log, "store_open", backend=self.store.backend, reopened=True)
            except StoreError as exc:
                self.problem = str(exc)
        health = await self.health()
        if health.ok != self.cached.ok or (not health.ok and health.detail != self.cached.detail):
            log_event(log, "store_health", level=logging.INFO if health.ok else logging.ERROR,
                      backend=health.backend, ok=health.ok, detail=health.detail)
        self.cached = health
        return health

    async def watch(self, interval_s: float = HEALTH_INTERVAL_S) -> None:
        """Refresh ``cached`` every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()


async def _open(settings: Settings, url: str, scheme: str) -> Store:
    build = BACKENDS.get(scheme)
    if build is None:
        raise StoreError(f"unknown store URL scheme {scheme!r} in {redact_url(url)}; "
                         f"use one of: {', '.join(sorted(BACKENDS))}")
    store = build(settings, url)
    await store.open()
    return store


async def open_store(settings: Settings) -> StoreSlot:
    """Open the configured store; on failure, log it once and return a slot that says why (and retries)."""
    url = settings.store_url
    scheme = urlsplit(url).scheme or url.rstrip(":")
    reopen = None if scheme not in BACKENDS else functools.partial(_open, settings, url, scheme)
    try:
        store = await _open(settings, url, scheme)
    except StoreError as exc:
        log_event(log, "store_unavailable", level=logging.ERROR, store=redact_url(url), problem=str(exc))
        return StoreSlot(None, str(exc), reopen=reopen, backend=scheme)
    log_event(log, "store_open", backend=store.backend, store=redact_url(url))
    slot = StoreSlot(store, reopen=reopen)
    await slot.refresh()
    return slot

"""The gateway's durable store: MCP tasks and conversation threads (later, the usage ledger).

One interface (``Store`` in ``gateway.store.base``) and its backends, chosen by the
operator's store URL (``shared.settings.StoreSettings``):

- ``memory``   (``gateway.store.memory``): a dict-backed store in this process, the test seam
  beside the real backends (as httpx ships a mock transport beside its transports). Nothing
  survives a restart; never the default.
- ``sqlite``   the embedded default: one file in the operator's state folder.
- ``postgresql`` several gateways serving one team share tasks and threads.

Rows are plain dataclasses (``gateway.store.records``) and carry JSON payloads as ``bytes``
(orjson), so a backend stores them without knowing their shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.records import StoreError, StoreHealth
from gateway.store.sqlite import SqliteStore
from shared import errors
from shared.logs import log_event
from shared.settings import Settings

__all__ = ["BACKENDS", "Store", "StoreError", "StoreSlot", "open_store", "redact_url"]

log = logging.getLogger("gateway.store")

# The one table of backends, by URL scheme: a new backend is a module and a line here.
BACKENDS: dict[str, Callable[[Settings, str], Store]] = {
    "memory": lambda _settings, _url: MemoryStore(),
    "sqlite": lambda _settings, url: SqliteStore(url),
}


def redact_url(url: str) -> str:
    """The URL without any password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class StoreSlot:
    """What the gateway holds: the open store, or why there is none.

    A store that cannot be opened does not stop the gateway: stateless calls keep working,
    ``getHealth`` shows the problem, and a call that needs the store (a task, a thread) gets
    an ``unavailable`` error naming it.
    """

    def __init__(self, store: Store | None, problem: str | None = None) -> None:
        self.store = store
        self.problem = problem

    def get(self) -> Store:
        """The store, or ``Unavailable`` with the operator-facing reason."""
        if self.store is None:
            raise errors.Unavailable(f"the gateway's store is not available: {self.problem or 'not configured'}")
        return self.store

    async def health(self) -> StoreHealth:
        if self.store is None:
            return StoreHealth("none", False, self.problem or "not configured")
        return await self.store.health()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()


async def open_store(settings: Settings) -> StoreSlot:
    """Open the configured store; on failure, log it and return a slot that says why."""
    url = settings.store_url
    scheme = urlsplit(url).scheme or url.rstrip(":")
    build = BACKENDS.get(scheme)
    try:
        if build is None:
            raise StoreError(f"unknown store URL scheme {scheme!r} in {redact_url(url)}; "
                             f"use one of: {', '.join(sorted(BACKENDS))}")
        store = build(settings, url)
        await store.open()
    except StoreError as exc:
        log_event(log, "store_unavailable", level=logging.ERROR, store=redact_url(url), problem=str(exc))
        return StoreSlot(None, str(exc))
    log_event(log, "store_open", backend=store.backend, store=redact_url(url))
    return StoreSlot(store)

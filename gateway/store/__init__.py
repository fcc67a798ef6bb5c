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

from gateway.store.base import Store
from gateway.store.records import StoreError
from gateway.store.slot import BACKENDS, HEALTH_INTERVAL_S, StoreSlot, open_store, redact_url

__all__ = ["BACKENDS", "HEALTH_INTERVAL_S", "Store", "StoreError", "StoreSlot", "open_store", "redact_url"]

"""Garbage-collector setting for the long-running processes (gateway and workers).

Everything built at start-up (the SDK, pydantic's validators, the routing tables: a few
hundred thousand objects) lives as long as the process, yet every full collection walked
it again, a pause landing on whichever call was running. ``settle_heap`` is called once,
after start-up and before serving: it collects, then freezes what is left (``gc.freeze``:
never scanned again, never freed, which it would not have been anyway). Cycles created
while serving are still found and freed as before.

Rejected: a larger young-generation threshold (fewer collections) kept ~4 MB more
garbage resident in a busy worker, against the 250 MB budget, for no tail latency we
could measure.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    gc.collect()
    gc.freeze()

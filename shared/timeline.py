"""Per-hop timestamps of calls, for finding where latency goes. Off unless asked for.

CPU profiles (``python -m bench profile``) say what a process spends its time on; they do
not say where a one-client call *waits*: in which process, on which hop. With
``LLMC_TIMELINE_DIR`` set to a folder, every process of the stack records named marks
("gateway.http_in", "worker.to_provider", ...) with ``time.monotonic_ns()``, which on
Linux is one clock for all processes, and writes them to ``<dir>/<pid>.marks`` when it
exits. ``python -m bench timeline`` lines the marks of each one-client call up and prints
the median time of each hop.

Off (the default), ``mark`` is one global test and a return: it stays on the hot path.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

__all__ = ["ENV_VAR", "enabled", "flush", "mark"]

ENV_VAR = "LLMC_TIMELINE_DIR"
# Marks kept in memory before a write; a run of ~1,000 calls writes a few times.
_FLUSH_EVERY = 20_000

_folder = os.environ.get(ENV_VAR) or None
_marks: list[tuple[str, int]] = []


def enabled() -> bool:
    return _folder is not None


def mark(name: str) -> None:
    """Record that this process reached ``name`` now (a no-op unless the timeline is on)."""
    if _folder is None:
        return
    _marks.append((name, time.monotonic_ns()))
    if len(_marks) >= _FLUSH_EVERY:
        flush()


def flush() -> None:
    """Append the recorded marks to this process's file (also done at exit)."""
    if _folder is None or not _marks:
        return
    lines = "".join(f"{name} {ns}\n" for name, ns in _marks)
    _marks.clear()
    path = os.path.join(_folder, f"{os.getpid()}.marks")
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(lines)
    except OSError as exc:  # a diagnostic must not fail the process it watches
        print(f"llm-caller timeline: cannot write {path}: {exc.strerror}", file=sys.stderr)


if _folder is not None:
    atexit.register(flush)

"""The load generator: virtual clients spread over several processes.

One Python process running 128 SDK clients saturates a core long before the server
does, and then the benchmark measures the client. So virtual clients run in a small
pool of long-lived processes (spawned once per run, since importing the SDK costs about
a second). A cell runs in three steps so that connecting is never timed:

1. each process gets a ``Job``, opens its clients and primes each one with one untimed
   call (TCP connect, session set-up), then answers ``ready``;
2. the parent snapshots CPU counters and sends ``go`` to all; clients run closed-loop
   (each issues its next call as soon as the previous one ends);
3. each process answers ``done`` with its results *before* closing its clients (so the
   parent's CPU window excludes teardown), then ``closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import httpx

from bench.calls import CallOutcome, Target, call_direct, call_mcp
from harness.sandbox import mcp_client

__all__ = ["Job", "JobResult", "LoadGenPool", "split"]

Connection = multiprocessing.connection.Connection
# One virtual client's "make call number i of this tool, with this timeout".
CallFn = Callable[[str, int, float], Awaitable[CallOutcome]]


@dataclass(frozen=True, slots=True)
class Job:
    target: Target
    tools: tuple[str, ...]  # call i uses tools[i % len(tools)]: one tool, or a mix for the soak
    clients: int
    calls: int  # total for this process, split over its clients
    mode: str = "2026-07-28"
    timeout_s: float = 60.0
    duration_s: float | None = None  # run until this many seconds after go, ignoring ``calls``
    first_index: int = 0  # keeps prompts distinct across processes


@dataclass(slots=True)
class JobResult:
    outcomes: list[CallOutcome] = field(default_factory=list)
    primed: list[CallOutcome] = field(default_factory=list)  # the untimed priming calls (the soak's tally)
    started: float = 0.0  # time.monotonic(): one clock for every process on Linux
    finished: float = 0.0
    cpu_s: float = 0.0  # this process's own CPU time over the timed phase
    error: str | None = None  # the job itself failed (could not connect, ...)


def split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` near-equal non-negative integers."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@contextlib.asynccontextmanager
async def _session(target: Target, mode: str) -> AsyncIterator[CallFn]:
    """One virtual client: a persistent MCP session, or one keep-alive HTTP connection."""
    if target.kind == "mcp":
        async with mcp_client(target.url, target.token, mode) as client:
            yield lambda tool, i, t: call_mcp(client, tool, i, t)
    else:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        headers = {"authorization": f"Bearer {target.token}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=target.url, headers=headers, limits=limits,
                                     timeout=httpx.Timeout(60.0), trust_env=False) as http:
            yield lambda tool, i, t: call_direct(http, tool, i, t)


async def _client_loop(call: CallFn, job: Job, indices: list[int],
                       deadline: float | None, sink: list[CallOutcome]) -> None:
    counter: Iterator[int] = itertools.count() if deadline is not None else iter(indices)
    for i in counter:
        if deadline is not None and time.monotonic() >= deadline:
            return
        index = job.first_index + i
        sink.append(await call(job.tools[index % len(job.tools)], index, job.timeout_s))


async def _run_job(job: Job, conn: Connection) -> None:
    result = JobResult()
    async with contextlib.AsyncExitStack() as stack:
        calls = [await stack.enter_async_context(_session(job.target, job.mode)) for _ in range(job.clients)]
        # Prime every client (connect, handshake in legacy mode); not timed, not counted.
        primed = await asyncio.gather(*(c(job.tools[0], -1 - n, job.timeout_s) for n, c in enumerate(calls)))
        result.primed = list(primed)
        bad = [p.outcome for p in primed if p.outcome != "ok"]
        counts = split(job.calls, job.clients)
        offsets = list(itertools.accumulate([0, *counts]))
        with _collector_paused(bounded=job.duration_s is None):
            conn.send(("ready", f"{len(bad)} priming calls failed: {bad[:3]}" if bad else None))
            if await asyncio.to_thread(conn.recv) != "go":
                return
            cpu0, result.started = time.process_time(), time.monotonic()
            deadline = result.started + job.duration_s if job.duration_s is not None else None
            await asyncio.gather(*(
                _client_loop(call, job, list(range(offsets[n], offsets[n + 1])), deadline, result.outcomes)
                for n, call in enumerate(calls)
            ))
            result.finished, result.cpu_s = time.monotonic(), time.process_time() - cpu0
        conn.send(("done", result))


@contextlib.contextmanager
def _collector_paused(*, bounded: bool) -> Iterator[None]:
    """Keep the load generator's own garbage collections out of the latencies it measures.

    A full collection over the SDK client's heap took 220-280 ms; every call of the
    process's clients in flight then read that much slower, whatever the target (a
    32-client stack cell's p99 went from ~180 to 300 ms when one landed in it). So, as
    ``timeit`` does: the heap built so far is frozen out of collection, and for a job of
    a fixed number of calls (seconds of work) collection is off until it ends. A job that
    runs for a duration (soak, profile) keeps collecting young objects, or it would grow
    for a minute unchecked.
    """
    gc.collect()
    gc.freeze()
    if bounded:
        gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _serve(conn: Connection) -> None:
    """A load-generator process: run jobs until told to stop (``None``)."""
    while (job := conn.recv()) is not None:
        try:
            asyncio.run(_run_job(job, conn))
        except Exception as exc:
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
            continue
        conn.send(("closed", None))


class LoadGenPool:
    """Long-lived load-generator processes driven over pipes."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
        self._procs: list[tuple[BaseProcess, Connection]] = []
        for n in range(processes):
            parent, child = context.Pipe()
            proc = context.Process(target=_serve, args=(child,), name=f"bench-loadgen-{n}", daemon=True)
            proc.start()
            child.close()
            self._procs.append((proc, parent))

    @property
    def size(self) -> int:
        return len(self._procs)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self._procs if p.pid is not None]

    def run(self, jobs: list[Job], on_go: Callable[[], None], on_done: Callable[[], None],
            timeout_s: float = 600.0) -> list[JobResult]:
        """Run one job per process (``len(jobs) <= size``), all starting together."""
        conns = [conn for _, conn in self._procs[: len(jobs)]]
        for conn, job in zip(conns, jobs, strict=True):
            conn.send(job)
        problems = [self._expect(conn, "ready", timeout_s) for conn in conns]
        on_go()
        for conn in conns:
            conn.send("go")
        results = [self._expect(conn, "done", timeout_s) for conn in conns]
        on_done()
        for conn in conns:
            self._expect(conn, "closed", timeout_s)
        for result, problem in zip(results, problems, strict=True):
            result.error = result.error or problem
        return results

    @staticmethod
    def _expect(conn: Connection, what: str, timeout_s: float) -> Any:
        try:
            if not conn.poll(timeout_s):
                raise TimeoutError(f"a load-generator process did not answer {what!r} within {timeout_s:g}s")
            kind, payload = conn.recv()
        except (EOFError, ConnectionError):
            raise RuntimeError(f"a load-generator process died while the runner waited for {what!r}") from None
        if kind != what:
            raise RuntimeError(f"load generator: expected {what!r}, got {kind!r}: {payload}")
        return payload

    def close(self) -> None:
        for proc, conn in self._procs:
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        self._procs.clear()

    def __enter__(self) -> LoadGenPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

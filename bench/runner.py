"""The side-by-side run: every (tool, client count) cell on each target, in rounds.

Drift (a warming CPU, a growing heap, another tenant on the machine) would favour
whichever target happens to run last, so each cell's calls are split over several
rounds, and the order of the targets rotates from round to round.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.calls import Target
from bench.loadgen import Job, LoadGenPool, split
from bench.procs import ProcessMonitor
from bench.stats import CellRun, summarise
from bench.targets import TARGET_NAMES, World, start_world

__all__ = ["DEFAULT_CALLS", "QUICK_CALLS", "BenchConfig", "run_bench", "run_cell"]

# Calls per cell, over all rounds, by client count: sized for 5-10 minutes on 2 cores. One
# client gets the most: its cells are cheap, and its latency ratio is the hardest target to
# measure on a noisy machine (300 calls in 3 rounds swung 1.07-1.53x between runs).
DEFAULT_CALLS = {1: 1200, 8: 1200, 32: 1920, 128: 2560}
QUICK_CALLS = {1: 60, 8: 120, 32: 192, 128: 256}
# Virtual clients per load-generator process. A process's clients share one event loop,
# so responses arriving together queue there, and that queueing lands in the measured
# latency: at 16 per process the stack's 32-client p99/p50 read 2.6-3.1, at 8 it read 2.0
# in the same conditions (the baseline's stayed ~4.1: its tail is its own). Decision D18.
CLIENTS_PER_LOADGEN = 8
QUOTA_MARGIN = 100  # requests beyond a cell's calls and priming calls (retries, discovery)
SATURATED = 0.85  # a load-generator process busier than this share of a core may be the bottleneck


@dataclass
class BenchConfig:
    tools: tuple[str, ...] = ("chat", "chatStream", "embed")
    concurrency: tuple[int, ...] = (1, 8, 32, 128)
    rounds: int = 6
    mode: str = "2026-07-28"
    calls: int | None = None  # per cell over all rounds; None: by client count
    quick: bool = False
    loadgen_procs: int | None = None  # per cell; None: one per CLIENTS_PER_LOADGEN clients, at most the pool size
    timeout_s: float = 60.0
    warmup_calls: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    def calls_per_round(self, clients: int) -> int:
        table = QUICK_CALLS if self.quick else DEFAULT_CALLS
        total = self.calls if self.calls is not None else table.get(clients, 20 * clients)
        # Every client makes at least one call per round, or the concurrency is not real.
        return max(clients, math.ceil(total / self.rounds))

    def procs_for(self, clients: int) -> int:
        wanted = self.loadgen_procs or math.ceil(clients / CLIENTS_PER_LOADGEN)
        return max(1, min(wanted, clients, self.pool_size))

    @property
    def pool_size(self) -> int:
        top = max(self.concurrency)
        # Room for the saturation rule in run_cell to add processes beyond the default.
        return self.loadgen_procs or (1 if top == 1 else max(2, min(4, math.ceil(top / CLIENTS_PER_LOADGEN))))


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_cell(world: World, pool: LoadGenPool, monitor: ProcessMonitor, cfg: BenchConfig, cell: CellRun,
             target: Target, calls: int) -> None:
    """Run one round of one cell and add it to ``cell``."""
    procs = min(max(cfg.procs_for(cell.clients), cell.procs_hint), pool.size, cell.clients)
    client_split, call_split = split(cell.clients, procs), split(calls, procs)
    offsets = list(itertools.accumulate([0, *call_split[:-1]]))
    jobs = [Job(target, (cell.tool,), c, n, cfg.mode, cfg.timeout_s, first_index=o)
            for c, n, o in zip(client_split, call_split, offsets, strict=True)]
    world.watch(monitor)  # a worker restarted by supervisord has a new pid
    if target.name == "stack":
        world.quota.ensure(calls + cell.clients + QUOTA_MARGIN)
    marks: dict[str, dict[str, float]] = {}

    def on_go() -> None:
        monitor.reset_window()
        marks["before"], marks["system_before"] = monitor.cpu(), monitor.system_cpu()

    def on_done() -> None:
        marks["after"], marks["system_after"] = monitor.cpu(), monitor.system_cpu()

    results = pool.run(jobs, on_go, on_done)
    cpu = {name: marks["after"].get(name, 0.0) - value for name, value in marks["before"].items()}
    system = {k: marks["system_after"][k] - v for k, v in marks["system_before"].items()}
    wall = max(r.finished for r in results) - min(r.started for r in results)
    busy = max(r.cpu_s / (r.finished - r.started) if r.finished > r.started else 0.0 for r in results)
    cell.add_round([o for r in results for o in r.outcomes], wall, cpu, monitor.window_peaks(), busy, procs, system)
    cell.problems.extend(r.error for r in results if r.error)
    if busy > SATURATED and procs < min(pool.size, cell.clients) and cfg.loadgen_procs is None:
        # One load-generator process was flat out: spread this cell wider from the next round on.
        cell.procs_hint = procs + 1
        _log(f"  load generator saturated ({busy:.0%} of a core) on {cell.target}/{cell.tool}/{cell.clients}; "
             f"{procs + 1} processes from the next round")


def _warm_up(world: World, pool: LoadGenPool, cfg: BenchConfig) -> None:
    """Untimed calls on every target and tool: imports, caches and connection pools get warm."""
    if cfg.warmup_calls <= 0:
        return
    for tool in cfg.tools:
        for name, target in world.targets.items():
            clients = min(8, max(cfg.concurrency))
            jobs = [Job(target, (tool,), clients, max(clients, cfg.warmup_calls), cfg.mode, cfg.timeout_s)]
            if name == "stack":
                world.quota.ensure(max(clients, cfg.warmup_calls) + clients + QUOTA_MARGIN)
            results = pool.run(jobs, lambda: None, lambda: None)
            bad = sum(1 for r in results for o in r.outcomes if o.outcome != "ok")
            if bad:
                _log(f"  warm-up: {bad} failed {tool} calls on {name}")


def _rotated(round_index: int) -> list[str]:
    shift = round_index % len(TARGET_NAMES)
    return [*TARGET_NAMES[shift:], *TARGET_NAMES[:shift]]


def _run_rounds(world: World, pool: LoadGenPool, monitor: ProcessMonitor, cfg: BenchConfig) -> list[CellRun]:
    cells = {(t, tool, c): CellRun(t, tool, c) for tool in cfg.tools for c in cfg.concurrency for t in TARGET_NAMES}
    targets = world.targets
    for r in range(cfg.rounds):
        started = time.monotonic()
        for tool in cfg.tools:
            for clients in cfg.concurrency:
                for name in _rotated(r):
                    run_cell(world, pool, monitor, cfg, cells[(name, tool, clients)], targets[name],
                             cfg.calls_per_round(clients))
        _log(f"round {r + 1}/{cfg.rounds} done in {time.monotonic() - started:.0f}s")
    return list(cells.values())


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Start everything, measure, stop everything; returns the raw summaries and run facts."""
    started = time.monotonic()
    cores = os.cpu_count() or 1
    _log("starting emulators, the full stack (supervisord) and the baseline server ...")
    # The pool first: its processes import the SDK while the stack starts.
    with LoadGenPool(cfg.pool_size) as pool, start_world() as world:
        monitor = ProcessMonitor(interval_s=0.1)
        world.watch(monitor)
        monitor.watch("runner", os.getpid())  # this process: the RSS sampler and the bookkeeping
        for n, pid in enumerate(pool.pids):
            monitor.watch(f"loadgen-{n}", pid)
        monitor.start()
        idle = monitor.sample()  # every worker registered, no call made yet
        try:
            _log(f"ready in {time.monotonic() - started:.1f}s; warming up ...")
            _warm_up(world, pool, cfg)
            cells = _run_rounds(world, pool, monitor, cfg)
        finally:
            monitor.stop()
        overall_peaks, spent = dict(monitor.peak_mb), world.quota.burned
    return {
        "cells": [summarise(cell, cores) for cell in cells],
        "peak_rss_mb": {k: round(v, 1) for k, v in sorted(overall_peaks.items())},
        "idle_rss_mb": {k: round(v, 1) for k, v in sorted(idle.items())},
        "duration_s": round(time.monotonic() - started, 1),
        "quota_requests_spent": spent,
    }

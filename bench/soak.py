"""``python -m bench soak``: many calls through the full stack while the provider misbehaves.

About ``fault_rate`` of the emulator's API requests are answered with a fault (5xx, 429
with ``retry-after: 0``, a dropped connection, a malformed body, a truncated stream): a
background thread keeps topping up the emulator's fault queue in proportion to the
requests it has seen. Every call must end in success or a taxonomy error within the
per-call timeout, and no process may keep growing: RSS is sampled every second and the
mean of the last 10% of samples is compared with the first 10% (after a warm-up).
Calls run in chunks of 2,500 (fresh sessions each), because the emulator's simulated
request quota must be topped up while nothing is in flight (see ``bench.quota``).
Afterwards every request the emulator served and every fault it handed out must be
accounted for, exactly, by the bench's own requests, the faulted worker's counters and
the failed calls (``bench.fault_tally``): a third verdict.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.calls import Target
from bench.fault_tally import fault_tally
from bench.loadgen import Job, JobResult, LoadGenPool, split
from bench.procs import ProcessMonitor, RssSample
from bench.stack_names import DEFAULT_KIND, DEFAULT_PROVIDER
from bench.targets import STACK_PROGRAMS, quota_of, watch_sandbox
from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from shared import errors
from shared.tool_names import GET_HEALTH

__all__ = ["FAULTS", "SoakConfig", "rss_growth", "run_soak", "taxonomy_types"]

# Cycled through when topping up; stream-only modes wait in the queue for a streaming call.
FAULTS: tuple[dict[str, Any], ...] = (
    {"mode": "status", "status": 500},
    {"mode": "status", "status": 429, "headers": {"retry-after": "0"}},
    {"mode": "status", "status": 503},
    {"mode": "drop"},
    {"mode": "malformed"},
    {"mode": "truncated_stream", "after_chunks": 2},
)
CHUNK_CALLS = 2_500
_SETTLE_READINGS = 30  # at most; two equal readings end the wait
FAULTED_PROVIDER = DEFAULT_PROVIDER  # the soak's calls take the default routes, served by its emulator
JUDGED = ("supervisord", *STACK_PROGRAMS.values())  # the product; emulator and load generator are context


@dataclass
class SoakConfig:
    calls: int = 10_000
    clients: int = 16
    fault_rate: float = 0.10
    timeout_s: float = 45.0  # above the stack's own 30 s provider deadline: only a real hang trips it
    tools: tuple[str, ...] = ("chat", "chatStream", "embed")
    mode: str = "2026-07-28"
    loadgen_procs: int = 2
    warmup_fraction: float = 0.10


def taxonomy_types() -> set[str]:
    """Every error type a call may end in (``shared.errors.ERROR_TYPES``, one per declared class)."""
    return set(errors.ERROR_TYPES)


class FaultFeeder(threading.Thread):
    """Keeps about ``rate`` x (API requests seen) faults queued at the emulator, spread out.

    The emulator hands queued faults to the very next requests, so a queue of several
    faults was a burst: at 500 requests/s one top-up queued a dozen, consecutive requests
    all failed, and the worker rightly opened its circuit for the rest of the run. Each
    fault is queued with ``every = 1/rate`` (it strikes one request in ten) and the kinds
    are interleaved, so no two consecutive requests fail because of the feeder.
    """

    def __init__(self, control: EmulatorControl, rate: float, on_tick: Any = None,
                 excluded: Callable[[], int] = lambda: 0) -> None:
        super().__init__(name="bench-fault-feeder", daemon=True)
        self.control, self.rate, self.on_tick = control, rate, on_tick
        self.excluded = excluded  # requests that are not the stack's (bench.quota's own)
        self.added = 0
        self.stop_event = threading.Event()

    def top_up(self) -> int:
        requests = int(self.control.stats()["requests"]) - self.excluded()
        wanted = int(self.rate * requests) + 4  # a few ahead, so faults are spread and not bunched
        if wanted > self.added:
            every = max(1, round(1 / self.rate)) if self.rate > 0 else 1
            self.control.add_faults(*[{**FAULTS[n % len(FAULTS)], "every": every}
                                      for n in range(self.added, wanted)])
            self.added = wanted
        return requests

    def run(self) -> None:
        while not self.stop_event.wait(0.25):
            requests = self.top_up()
            if self.on_tick is not None:
                self.on_tick(requests)


def rss_growth(timeline: list[RssSample], warmup_fraction: float) -> dict[str, dict[str, Any]]:
    """Per process: mean RSS of the first and last 10% of post-warm-up samples, and the growth."""
    if not timeline:
        return {}
    end = timeline[-1].t
    steady = [s for s in timeline if s.t >= warmup_fraction * end] or timeline
    tenth = max(1, len(steady) // 10)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({n for s in steady for n in s.rss_mb}):
        series = [s.rss_mb[name] for s in steady if name in s.rss_mb]
        first = sum(series[:tenth]) / len(series[:tenth])
        last = sum(series[-tenth:]) / len(series[-tenth:])
        growth = (last - first) / first * 100 if first else 0.0
        out[name] = {"first_mb": round(first, 1), "last_mb": round(last, 1), "growth_pct": round(growth, 2),
                     "max_mb": round(max(series), 1), "judged": name in JUDGED, "within_10pct": growth <= 10.0}
    return out


def _progress(box: Sandbox, monitor: ProcessMonitor, started: float) -> Any:
    last = [0.0]

    def tick(requests: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            watch_sandbox(box, monitor)  # follow a restarted worker to its new pid
            print(f"  soak: {time.monotonic() - started:.0f}s, {requests} provider requests", file=sys.stderr,
                  flush=True)

    return tick


def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    started = time.monotonic()
    with LoadGenPool(cfg.loadgen_procs) as pool, Sandbox(chunk_delay_s=0.0) as box:
        box.wait_workers_up()
        monitor = ProcessMonitor(interval_s=1.0, keep_timeline=True)
        watch_sandbox(box, monitor)
        for n, pid in enumerate(pool.pids):
            monitor.watch(f"loadgen-{n}", pid)
        control, quota = EmulatorControl(box.emulators.url(DEFAULT_KIND)), quota_of(box)
        feeder = FaultFeeder(control, cfg.fault_rate, _progress(box, monitor, started), lambda: quota.burned)
        target = Target("stack", "mcp", box.url, box.token)
        monitor.start()
        feeder.start()
        results: list[JobResult] = []
        try:
            # In chunks, so that the emulator's simulated quota can be topped up between them
            # while no stack call is in flight (see bench.quota).
            for first in range(0, cfg.calls, CHUNK_CALLS):
                calls = min(CHUNK_CALLS, cfg.calls - first)
                quota.ensure(2 * calls + cfg.clients + 100)  # retries after faults need room too
                jobs = [Job(target, cfg.tools, c, n, cfg.mode, cfg.timeout_s, first_index=first + i * calls)
                        for i, (c, n) in enumerate(zip(split(cfg.clients, cfg.loadgen_procs),
                                                       split(calls, cfg.loadgen_procs), strict=True))]
                results += pool.run(jobs, lambda: None, lambda: None, timeout_s=3600)
        finally:
            feeder.stop_event.set()
            feeder.join(2)
            monitor.stop()
        control.clear_faults()  # nothing more is injected: the counts can settle
        emulator, worker = asyncio.run(_settled_counts(box, control))
        control.close()
    outcomes = [o for r in results for o in r.outcomes]
    primed = [o for r in results for o in r.primed]
    requests = int(emulator["requests"]) - quota.burned
    summary = _summary(cfg, outcomes, monitor, int(emulator["faults"]), requests, time.monotonic() - started,
                       [r.error for r in results if r.error])
    failed = sum(1 for o in (*outcomes, *primed) if o.outcome != "ok")
    tally = fault_tally(emulator, quota.burned, quota.faulted, worker.get("counters") or {}, failed)
    summary["fault_tally"] = {"worker": FAULTED_PROVIDER, "restarts_seen": worker.get("restarts_seen", 0),
                              "priming_calls": len(primed), **tally}
    summary["verdict"]["faults_accounted"] = tally["holds"]
    return summary


async def _settled_counts(box: Sandbox, control: EmulatorControl) -> tuple[dict[str, Any], dict[str, Any]]:
    """The emulator's stats and the faulted worker's getHealth entry, once neither moves any more.

    getHealth shows the counters of the worker's last heartbeat; two readings a few
    heartbeats apart that agree, with nothing in flight, are the final ones.
    """
    pause = 4 * box.heartbeat_s
    previous: tuple[Any, ...] | None = None
    async with box.client() as client:
        for _ in range(_SETTLE_READINGS):
            health = (await client.call_tool(GET_HEALTH, {})).structured_content or {}
            worker = next(w for w in health.get("workers", []) if w.get("provider") == FAULTED_PROVIDER)
            emulator = control.stats()
            reading = (emulator["requests"], emulator["faults"], worker.get("counters"))
            if reading == previous and not worker.get("inflight"):
                break
            previous = reading
            await asyncio.sleep(pause)
    return emulator, worker


def _summary(cfg: SoakConfig, outcomes: list[Any], monitor: ProcessMonitor, faults_used: int, requests: int,
             duration_s: float, problems: list[str]) -> dict[str, Any]:
    counts = Counter(o.outcome for o in outcomes)
    allowed = taxonomy_types() | {"ok"}
    hangs = counts.get("hang", 0)
    untyped = {k: v for k, v in counts.items() if k not in allowed and k != "hang"}
    growth = rss_growth(monitor.timeline, cfg.warmup_fraction)
    memory_ok = all(g["within_10pct"] for g in growth.values() if g["judged"])
    return {
        "config": {"calls": cfg.calls, "clients": cfg.clients, "fault_rate": cfg.fault_rate,
                   "timeout_s": cfg.timeout_s, "tools": list(cfg.tools), "mode": cfg.mode},
        "duration_s": round(duration_s, 1), "calls": len(outcomes), "outcomes": dict(counts.most_common()),
        "by_tool": {tool: dict(Counter(o.outcome for o in outcomes if o.tool == tool)) for tool in cfg.tools},
        "provider_requests": requests, "faults_injected": faults_used,
        "fault_share_of_requests": round(faults_used / requests, 3) if requests else None,
        "hangs": hangs, "non_taxonomy": untyped, "rss": growth, "problems": problems,
        "verdict": {"all_calls_ended_cleanly": hangs == 0 and not untyped, "memory_within_10pct": memory_ok},
        "rss_timeline": [{"t": round(s.t, 1), **{k: round(v, 1) for k, v in s.rss_mb.items()}}
                         for s in monitor.timeline],
    }

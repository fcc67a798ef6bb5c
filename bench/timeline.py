"""``python -m bench timeline``: where a one-client call's time goes, hop by hop.

Starts the same world as the benchmark with ``LLMC_TIMELINE_DIR`` set (``shared.timeline``),
so the load generator, the baseline server, the gateway, the workers and the emulator
record named marks on one clock. One client calls the baseline and the stack in
alternating rounds; once every process has exited and written its marks, each call's
marks are lined up from its ``client.send``. The report gives the median of each hop
(the median of the per-call differences, not a difference of medians) and the six
segments both servers share, side by side.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Job, LoadGenPool
from bench.runner import QUOTA_MARGIN
from bench.targets import start_world
from shared.timeline import ENV_VAR

__all__ = ["BASELINE_MARKS", "STACK_MARKS", "TimelineConfig", "cycles", "run_timeline", "summarise",
           "timeline_markdown"]

STACK_MARKS = ("client.send", "gateway.http_in", "gateway.authed", "gateway.tool_in", "gateway.to_worker",
               "worker.request_in", "worker.accept", "worker.to_provider", "provider.request_in",
               "worker.provider_done", "worker.reply_sent", "gateway.reply", "gateway.tool_out",
               "gateway.http_out", "client.done")
BASELINE_MARKS = ("client.send", "baseline.http_in", "baseline.tool_in", "provider.request_in",
                  "baseline.tool_out", "baseline.http_out", "client.done")
# The segments both servers have, as (label, baseline from/to, stack from/to).
SHARED_SEGMENTS = (
    ("client sends; server parses HTTP", "client.send", "baseline.http_in", "client.send", "gateway.http_in"),
    ("server: HTTP in to tool handler", "baseline.http_in", "baseline.tool_in", "gateway.http_in", "gateway.tool_in"),
    ("tool handler to provider", "baseline.tool_in", "provider.request_in", "gateway.tool_in",
     "provider.request_in"),
    ("provider back to tool handler's return", "provider.request_in", "baseline.tool_out", "provider.request_in",
     "gateway.tool_out"),
    ("server: tool return to response body", "baseline.tool_out", "baseline.http_out", "gateway.tool_out",
     "gateway.http_out"),
    ("client reads, parses, validates", "baseline.http_out", "client.done", "gateway.http_out", "client.done"),
)

Mark = tuple[int, str]  # (monotonic ns, name)
Cycle = dict[str, int]  # mark name -> ns of its first occurrence in one call


@dataclass(frozen=True)
class TimelineConfig:
    calls: int = 1200  # per target, over all rounds
    rounds: int = 6
    tool: str = "chat"
    mode: str = "2026-07-28"
    warmup_calls: int = 60


def read_marks(folder: Path) -> list[Mark]:
    marks: list[Mark] = []
    for path in folder.glob("*.marks"):
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, ns = line.partition(" ")
            marks.append((int(ns), name))
    marks.sort()
    return marks


def cycles(marks: Iterable[Mark], windows: Sequence[tuple[int, int]] | None = None) -> dict[str, list[Cycle]]:
    """One client's calls, by target: each ``client.send`` .. ``client.done`` span and the marks inside it.

    With ``windows`` ((start, end) ns), only calls sent inside one count: the timed part of
    each load-generator job, without its warm-up and its untimed priming call.
    """
    out: dict[str, list[Cycle]] = {"baseline": [], "stack": []}
    current: Cycle | None = None
    for ns, name in marks:
        if name == "client.send":
            inside = windows is None or any(start <= ns <= end for start, end in windows)
            current = {name: ns} if inside else None
        elif current is not None:
            current.setdefault(name, ns)
            if name == "client.done":
                target = "stack" if "gateway.to_worker" in current else (
                    "baseline" if "baseline.tool_in" in current else None)
                if target is not None:
                    out[target].append(current)
                current = None
    return out


def _median_us(values: Sequence[int]) -> float | None:
    return round(statistics.median(values) / 1000, 1) if values else None


def _hops(calls: list[Cycle], names: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for start, end in itertools.pairwise(names):
        diffs = [c[end] - c[start] for c in calls if start in c and end in c]
        rows.append({"from": start, "to": end, "median_us": _median_us(diffs), "calls": len(diffs)})
    return rows


def summarise(by_target: dict[str, list[Cycle]]) -> dict[str, Any]:
    stack, baseline = by_target["stack"], by_target["baseline"]
    shared = []
    for label, b_from, b_to, s_from, s_to in SHARED_SEGMENTS:
        b = _median_us([c[b_to] - c[b_from] for c in baseline if b_from in c and b_to in c])
        s = _median_us([c[s_to] - c[s_from] for c in stack if s_from in c and s_to in c])
        shared.append({"segment": label, "baseline_us": b, "stack_us": s,
                       "difference_us": round(s - b, 1) if s is not None and b is not None else None})
    accepted = [c["gateway.accepted"] - c["client.send"] for c in stack if "gateway.accepted" in c]
    return {
        "calls": {"baseline": len(baseline), "stack": len(stack)},
        "total_us": {name: _median_us([c["client.done"] - c["client.send"] for c in calls])
                     for name, calls in (("baseline", baseline), ("stack", stack))},
        "shared_segments": shared,
        "stack_hops": _hops(stack, STACK_MARKS),
        "baseline_hops": _hops(baseline, BASELINE_MARKS),
        "accepted_arrives_us": _median_us(accepted),
    }


def run_timeline(cfg: TimelineConfig) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="llmc-timeline-"))
    previous = os.environ.get(ENV_VAR)
    # Set before anything is spawned: every process reads it when it imports shared.timeline.
    os.environ[ENV_VAR] = str(folder)
    try:
        per_round = max(1, cfg.calls // cfg.rounds)
        with LoadGenPool(1) as pool, start_world() as world:
            targets = world.targets
            world.quota.ensure(cfg.calls + cfg.warmup_calls + QUOTA_MARGIN)
            for name in ("baseline", "stack"):
                pool.run([Job(targets[name], (cfg.tool,), 1, cfg.warmup_calls, cfg.mode)], _nothing, _nothing)
            windows: list[tuple[int, int]] = []
            for r in range(cfg.rounds):
                for name in (("baseline", "stack") if r % 2 == 0 else ("stack", "baseline")):
                    window = _Window()
                    pool.run([Job(targets[name], (cfg.tool,), 1, per_round, cfg.mode)], window.open, window.close)
                    windows.append((window.start, window.end))
        # Both closed: every process has exited and written its marks.
        summary = summarise(cycles(read_marks(folder), windows))
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
        shutil.rmtree(folder, ignore_errors=True)
    summary.update(tool=cfg.tool, mode=cfg.mode, rounds=cfg.rounds)
    return summary


def _nothing() -> None:
    return None


@dataclass
class _Window:
    """When a job's timed calls ran (``LoadGenPool.run`` calls ``open`` at go, ``close`` when done)."""

    start: int = 0
    end: int = 0

    def open(self) -> None:
        self.start = time.monotonic_ns()

    def close(self) -> None:
        self.end = time.monotonic_ns()


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def timeline_markdown(summary: dict[str, Any]) -> str:
    from bench.report import wrap

    total = summary["total_us"]
    out = ["# Where a one-client call's time goes", "", *wrap(
        f"{summary['tool']}, one client, {summary['calls']['stack']} stack and {summary['calls']['baseline']} "
        f"baseline calls in {summary['rounds']} alternating rounds; medians of per-call differences between "
        f"marks on one monotonic clock (`python -m bench timeline`, `shared/timeline.py`). Whole call: "
        f"stack {_cell(total['stack'])} us, baseline {_cell(total['baseline'])} us."),
        "", "## Side by side", "", "| segment | baseline us | stack us | stack - baseline us |", "|---|---:|---:|---:|"]
    out += [f"| {row['segment']} | {_cell(row['baseline_us'])} | {_cell(row['stack_us'])} "
            f"| {_cell(row['difference_us'])} |" for row in summary["shared_segments"]]
    for key, title in (("stack_hops", "The stack, hop by hop"), ("baseline_hops", "The baseline, hop by hop")):
        out += ["", f"## {title}", "", "| from | to | median us |", "|---|---|---:|"]
        out += [f"| `{row['from']}` | `{row['to']}` | {_cell(row['median_us'])} |" for row in summary[key]]
    out += ["", *wrap(f"The worker's ACCEPTED reaches the gateway {_cell(summary['accepted_arrives_us'])} us after "
                      "the client sent the call, while the provider request is under way (off the critical "
                      "path, but on the same two cores).")]
    return "\n".join(out) + "\n"

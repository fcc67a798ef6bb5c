"""Turning raw call outcomes of one cell (one target, tool and client count) into numbers."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.calls import CallOutcome
from bench.stack_names import WORKERS

__all__ = ["RELEVANT", "CellRun", "percentile", "summarise"]

# Processes whose CPU is charged to a target (the others idle along, and are still in the JSON).
RELEVANT: dict[str, tuple[str, ...]] = {
    "direct": ("loadgen", "emulator"),
    "baseline": ("loadgen", "emulator", "baseline"),
    "stack": ("loadgen", "emulator", "gateway", *WORKERS, "supervisord"),
}
# The processes that make up each target's server side (for "server CPU per 1k calls").
SERVER_SIDE: dict[str, tuple[str, ...]] = {
    "direct": (),
    "baseline": ("baseline",),
    "stack": ("gateway", *WORKERS, "supervisord"),
}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


@dataclass
class CellRun:
    """One cell, accumulated over the rounds it ran in."""

    target: str
    tool: str
    clients: int
    outcomes: list[CallOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: Counter[str] = field(default_factory=Counter)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    loadgen_busy: float = 0.0  # the busiest load-generator process: CPU seconds / wall seconds
    loadgen_procs: int = 0
    procs_hint: int = 0  # raised by the runner when a load-generator process saturated
    round_p50_ms: list[float | None] = field(default_factory=list)
    system_cpu_s: Counter[str] = field(default_factory=Counter)  # whole machine: "busy", "steal"
    problems: list[str] = field(default_factory=list)

    def add_round(self, outcomes: list[CallOutcome], wall_s: float, cpu_s: dict[str, float],
                  peaks: dict[str, float], busy: float, procs: int, system: dict[str, float]) -> None:
        self.outcomes.extend(outcomes)
        self.system_cpu_s.update(system)
        self.wall_s += wall_s
        self.cpu_s.update({name: max(0.0, value) for name, value in cpu_s.items()})
        for name, value in peaks.items():
            self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), value)
        self.loadgen_busy = max(self.loadgen_busy, busy)
        self.loadgen_procs = procs
        self.round_p50_ms.append(_ms(percentile([o.latency_s for o in outcomes if o.outcome == "ok"], 50)))


def _per_1k(cpu_s: Counter[str], calls: int) -> dict[str, float]:
    if not calls:
        return {}
    merged: Counter[str] = Counter()
    for name, value in cpu_s.items():
        # The load-generator processes are reported as one.
        merged["loadgen" if name.startswith("loadgen-") else name] += value
    return {name: round(value * 1000 / calls, 3) for name, value in sorted(merged.items())}


def _pct(seconds: float, wall_s: float, cores: int) -> float | None:
    return round(100 * seconds / (wall_s * cores), 1) if wall_s else None


def summarise(cell: CellRun, cores: int) -> dict[str, Any]:
    ok = [o for o in cell.outcomes if o.outcome == "ok"]
    latencies = [o.latency_s for o in ok]
    ttfp = [o.ttfp_s for o in ok if o.ttfp_s is not None]
    errors = Counter(o.outcome for o in cell.outcomes if o.outcome != "ok")
    per_1k = _per_1k(cell.cpu_s, len(cell.outcomes))
    total_cpu = sum(cell.cpu_s.values())
    loadgen_rss = sum(v for k, v in cell.peak_rss_mb.items() if k.startswith("loadgen-"))
    rss = {k: round(v, 1) for k, v in cell.peak_rss_mb.items() if not k.startswith("loadgen-")}
    rss["loadgen"] = round(loadgen_rss, 1)
    return {
        "target": cell.target, "tool": cell.tool, "clients": cell.clients,
        "calls": len(cell.outcomes), "ok": len(ok), "errors": sum(errors.values()), "error_types": dict(errors),
        "p50_ms": _ms(percentile(latencies, 50)), "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)), "max_ms": _ms(max(latencies, default=None)),
        "ttfp_p50_ms": _ms(percentile(ttfp, 50)), "ttfp_p99_ms": _ms(percentile(ttfp, 99)),
        "calls_per_s": round(len(ok) / cell.wall_s, 1) if cell.wall_s else None,
        "wall_s": round(cell.wall_s, 3),
        "cpu_s_per_1k": per_1k,
        "server_cpu_s_per_1k": round(sum(per_1k.get(n, 0.0) for n in SERVER_SIDE[cell.target]), 3),
        # Share of the whole machine busy during the cell: near 100% means CPU-bound.
        "machine_busy_pct": _pct(total_cpu, cell.wall_s, cores),
        # The same for every process on the machine: well above ours means another tenant was busy.
        "system_busy_pct": _pct(cell.system_cpu_s["busy"], cell.wall_s, cores),
        "steal_pct": _pct(cell.system_cpu_s["steal"], cell.wall_s, cores),
        "loadgen_busy_pct": round(100 * cell.loadgen_busy, 1), "loadgen_procs": cell.loadgen_procs,
        "peak_rss_mb": rss, "round_p50_ms": cell.round_p50_ms, "problems": cell.problems,
    }

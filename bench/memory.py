"""``python -m bench memory``: what each process of the stack holds, idle and after calls.

RSS counts every resident page, shared ones (the interpreter, shared libraries) in full
in each process; PSS splits each shared page between the processes mapping it; USS is
what the process alone holds, what stopping it would give back. RSS comes from
``/proc/PID/statm`` (readable by anyone); PSS and USS come from ``/proc/PID/smaps_rollup``,
which the hardened gateway and workers (non-dumpable, ``shared.hardening``) show only to
root: without that they read as not measured.

Three readings per process: right after every worker registered (``idle``), after a
few calls of each tool through every provider that serves it (``after calls``), and once
more after a quiet pause (``settled``). The per-worker goal (``WORKER_IDLE_LIMIT_MB``) is
judged on the idle reading, because a worker nobody calls stays at it for its whole life.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psutil

from bench.calls import call_mcp
from bench.targets import stack_pids
from bench.verdicts import STACK_PROCS, idle_worker_target, stack_total_target
from harness.sandbox import Sandbox
from shared.tool_names import CHAT, CHAT_STREAM, EMBED

__all__ = ["MemoryConfig", "Reading", "memory_markdown", "memory_targets", "read_process", "run_memory"]

MB = 1024 * 1024
PHASES = ("idle", "after calls", "settled")


@dataclass(frozen=True)
class MemoryConfig:
    calls: int = 20  # per tool and provider
    settle_s: float = 3.0  # before the idle reading, and before the settled one
    chunk_delay_s: float = 0.0
    mode: str = "2026-07-28"  # the MCP protocol era of the client


@dataclass(frozen=True, slots=True)
class Reading:
    rss_mb: float
    pss_mb: float | None  # None: smaps_rollup not readable (not root, or the process is gone)
    uss_mb: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"rss_mb": self.rss_mb, "pss_mb": self.pss_mb, "uss_mb": self.uss_mb}


def _smaps_rollup(pid: int) -> dict[str, int] | None:
    """The kB fields of ``/proc/PID/smaps_rollup``; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in lines[1:]:  # the first line is the address range
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            fields[name] = int(value[0])
    return fields or None


def read_process(pid: int) -> Reading | None:
    """RSS, PSS and USS of one process in MB; None if it is gone."""
    try:
        rss = psutil.Process(pid).memory_info().rss / MB
    except psutil.Error:
        return None
    rollup = _smaps_rollup(pid)
    if rollup is None:
        return Reading(round(rss, 1), None, None)
    uss = (rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)) / 1024
    return Reading(round(rss, 1), round(rollup.get("Pss", 0) / 1024, 1), round(uss, 1))


def _read_stack(box: Sandbox) -> dict[str, Reading]:
    readings: dict[str, Reading] = {}
    for name, pid in stack_pids(box).items():
        reading = read_process(pid) if pid else None
        if reading is not None:
            readings[name] = reading
    return readings


def _plan(box: Sandbox) -> list[tuple[str, str]]:
    """(tool, provider) for every tool each configured provider serves per its config."""
    plan: list[tuple[str, str]] = []
    for name, provider in box.providers.providers.items():
        capabilities = {c for m in provider.models for c in m.capabilities}
        plan += [(tool, name) for tool in (CHAT, CHAT_STREAM, EMBED) if tool in capabilities]
    return plan


async def _make_calls(box: Sandbox, cfg: MemoryConfig) -> dict[str, int]:
    """``cfg.calls`` calls of each (tool, provider); the count of each outcome."""
    outcomes: dict[str, int] = {}
    async with box.client(cfg.mode) as client:
        for tool, provider in _plan(box):
            for index in range(cfg.calls):
                outcome = await call_mcp(client, tool, index, 30.0, provider=provider)
                outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
    return outcomes


def run_memory(cfg: MemoryConfig) -> dict[str, Any]:
    """Start a sandbox, read every stack process idle, after calls and settled; stop it."""
    phases: dict[str, dict[str, Reading]] = {}
    with Sandbox(chunk_delay_s=cfg.chunk_delay_s) as box:
        box.wait_workers_up()
        time.sleep(cfg.settle_s)
        phases["idle"] = _read_stack(box)
        outcomes = asyncio.run(_make_calls(box, cfg))
        phases["after calls"] = _read_stack(box)
        time.sleep(cfg.settle_s)
        phases["settled"] = _read_stack(box)
    return {
        "config": {"calls_per_tool_and_provider": cfg.calls, "settle_s": cfg.settle_s},
        "outcomes": outcomes,
        "phases": {phase: {name: r.to_json() for name, r in sorted(readings.items())}
                   for phase, readings in phases.items()},
        "targets": memory_targets({name: r.rss_mb for name, r in phases["idle"].items()},
                                  {name: r.rss_mb for name, r in phases["after calls"].items()}),
    }


def memory_targets(idle_rss: dict[str, float], busy_rss: dict[str, float]) -> list[dict[str, Any]]:
    """The per-worker idle goal, and the stack's total after calls (the bench judges its peak)."""
    return [idle_worker_target(idle_rss), stack_total_target(busy_rss, "after calls")]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def memory_markdown(summary: dict[str, Any]) -> str:
    """The readings as one table per figure (RSS, PSS, USS), processes down, phases across."""
    phases: dict[str, dict[str, dict[str, float | None]]] = summary["phases"]
    names = sorted({n for readings in phases.values() for n in readings},
                   key=lambda n: (STACK_PROCS.index(n) if n in STACK_PROCS else len(STACK_PROCS), n))
    out = ["# LLM Caller memory per process", "",
           f"{summary['config']['calls_per_tool_and_provider']} calls of each tool through each provider "
           f"that serves it; outcomes: {summary['outcomes']}.", ""]
    for figure, key in (("RSS", "rss_mb"), ("PSS", "pss_mb"), ("USS", "uss_mb")):
        out += [f"## {figure} (MB)", "", "| process | " + " | ".join(PHASES) + " |",
                "|---|" + "---|" * len(PHASES)]
        for name in names:
            cells = [_cell(phases.get(p, {}).get(name, {}).get(key)) for p in PHASES]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## Targets", "", "| target | measured | limit | result |", "|---|---|---|---|"]
    out += [f"| {t['target']} | {t['value']} | {t['limit']} | {t['result']} |" for t in summary["targets"]]
    return "\n".join(out) + "\n"

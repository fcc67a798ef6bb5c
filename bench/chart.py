"""The PNG chart: per tool, latency and throughput against client count, one line per target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or in a terminal session

# The backend is chosen above, before pyplot is imported.
import matplotlib.pyplot as plt

__all__ = ["draw"]

COLOURS = {"direct": "#7f7f7f", "baseline": "#1f77b4", "stack": "#d62728"}
LABELS = {"direct": "(a) direct HTTP", "baseline": "(b) SDK baseline", "stack": "(c) full stack"}


def _series(cells: list[dict[str, Any]], target: str, tool: str, key: str) -> tuple[list[int], list[float]]:
    points = sorted((c["clients"], c[key]) for c in cells
                    if c["target"] == target and c["tool"] == tool and c[key] is not None)
    return [p[0] for p in points], [p[1] for p in points]


def draw(results: dict[str, Any], path: Path) -> None:
    cells = results["cells"]
    clients = sorted({c["clients"] for c in cells})
    tools = list(dict.fromkeys(c["tool"] for c in cells))
    fig, axes = plt.subplots(2, len(tools), figsize=(5 * len(tools), 8), squeeze=False)
    for col, tool in enumerate(tools):
        top, bottom = axes[0][col], axes[1][col]
        for target, colour in COLOURS.items():
            x, p50 = _series(cells, target, tool, "p50_ms")
            _, p99 = _series(cells, target, tool, "p99_ms")
            top.plot(x, p50, "o-", color=colour, label=f"{LABELS[target]} p50")
            top.plot(x, p99, "x--", color=colour, alpha=0.6, label=f"{LABELS[target]} p99")
            if tool == "chatStream":
                x, first = _series(cells, target, tool, "ttfp_p50_ms")
                top.plot(x, first, "s:", color=colour, alpha=0.8, label=f"{LABELS[target]} first progress p50")
            x, rate = _series(cells, target, tool, "calls_per_s")
            bottom.plot(x, rate, "o-", color=colour, label=LABELS[target])
        top.set_title(f"{tool}: latency")
        top.set_ylabel("ms")
        top.set_yscale("log")
        bottom.set_title(f"{tool}: throughput")
        bottom.set_ylabel("calls/s")
        for ax in (top, bottom):
            ax.set_xscale("log", base=2)
            ax.set_xticks(clients, [str(n) for n in clients])
            ax.minorticks_off()
            ax.set_xlabel("concurrent clients")
            ax.grid(True, which="both", alpha=0.3)
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    machine = results["machine"]
    fig.suptitle(f"LLM Caller benchmark, {machine['cpu_model']}, {machine['logical_cores']} cores, "
                 f"mode {results['config']['mode']}, {machine['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

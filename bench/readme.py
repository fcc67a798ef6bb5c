"""The README's benchmark section: a summary of the latest run, rewritten by ``make bench``.

Only a run that writes to the default results folder updates the README, so an
experiment with ``--out /tmp/x`` never replaces the published figures. The section sits
between two HTML comments; everything outside them is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import wrap

__all__ = ["BEGIN", "END", "readme_section", "update_readme"]

BEGIN = "<!-- bench:begin (written by `make bench`; edit bench/readme.py, not this) -->"
END = "<!-- bench:end -->"


def _cell(cells: list[dict[str, Any]], tool: str, clients: int, target: str) -> dict[str, Any] | None:
    return next((c for c in cells if (c["tool"], c["clients"], c["target"]) == (tool, clients, target)), None)


def _num(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _summary_rows(results: dict[str, Any]) -> list[str]:
    rows = ["| tool | clients | p50 ms direct / baseline / stack | p99 ms baseline / stack "
            "| calls/s baseline / stack | server CPU s per 1k calls baseline / stack "
            "| first progress p50 ms baseline / stack |",
            "|---|---|---|---|---|---|---|"]
    keys = sorted({(c["tool"], c["clients"]) for c in results["cells"]}, key=lambda k: (k[0], k[1]))
    for tool, clients in keys:
        a, b, c = (_cell(results["cells"], tool, clients, t) for t in ("direct", "baseline", "stack"))
        if b is None or c is None:
            continue
        ttfp = f"{_num(b['ttfp_p50_ms'], 2)} / {_num(c['ttfp_p50_ms'], 2)}" if tool == "chatStream" else ""
        rows.append(
            f"| {tool} | {clients} | {_num(a['p50_ms'] if a else None, 2)} / {_num(b['p50_ms'], 2)} / "
            f"{_num(c['p50_ms'], 2)} | {_num(b['p99_ms'], 1)} / {_num(c['p99_ms'], 1)} | "
            f"{_num(b['calls_per_s'])} / {_num(c['calls_per_s'])} | "
            f"{_num(b['server_cpu_s_per_1k'], 2)} / {_num(c['server_cpu_s_per_1k'], 2)} | {ttfp} |")
    return rows


def readme_section(results: dict[str, Any]) -> str:
    m = results["machine"]
    intro = wrap(
        f"Latest `make bench` run, {m['date']}: {m['cpu_model']}, {m['logical_cores']} logical cores, "
        f"{m['memory_gb']} GB, Python {m['python']}, MCP SDK {m['mcp_sdk']}, protocol {results['config']['mode']}, "
        f"{results['config']['rounds']} alternating rounds. Direct = HTTP straight to the OpenAI emulator; "
        "baseline = a one-process MCP server on the official SDK calling the emulator with httpx "
        "(`bench/baseline_server.py`); stack = gateway + workers under supervisord, bearer auth on. "
        "All three in one run; ratios matter more than absolute figures on a shared machine. "
        "Every figure, with CPU per process and RSS idle and at peak: `bench/results/latest.md` (and `.json`, "
        "`.png`); PSS and USS: `python -m bench memory`.")
    targets = ["| target | measured | limit | result |", "|---|---|---|---|"]
    targets += [f"| {t['target']} | {t['value']} | {t['limit']} | {t['result']} |" for t in results["targets"]]
    return "\n".join([BEGIN, *intro, "", *_summary_rows(results), "", *targets, END])


def update_readme(readme: Path, results: dict[str, Any]) -> bool:
    """Replace the section in ``readme``; False (file untouched) when its markers are missing."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start] + readme_section(results) + text[end + len(END):], encoding="utf-8")
    return True

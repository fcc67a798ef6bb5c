"""The written results: JSON (everything), a markdown table (for the README) and stdout."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.stack_names import WORKERS

__all__ = ["machine_info", "markdown", "soak_markdown", "wrap", "write_results"]

MD_WIDTH = 100
PROCESS_COLUMNS = ("loadgen", "emulator", "baseline", "gateway", *WORKERS, "supervisord")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "?"

    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mcp_sdk": version("mcp"),
        "uvicorn": version("uvicorn"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _latency_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for c in cells:
        ttfp = f"{_fmt(c['ttfp_p50_ms'], 2)} / {_fmt(c['ttfp_p99_ms'], 2)}" if c["tool"] == "chatStream" else ""
        errors = str(c["errors"]) if not c["errors"] else f"{c['errors']} {c['error_types']}"
        rows.append([c["tool"], str(c["clients"]), c["target"], str(c["calls"]), errors, _fmt(c["p50_ms"], 2),
                     _fmt(c["p99_ms"], 2), ttfp, _fmt(c["calls_per_s"]),
                     f"{_fmt(c['machine_busy_pct'], 0)} / {_fmt(c.get('system_busy_pct'), 0)}",
                     f"{c['loadgen_busy_pct']:.0f} ({c['loadgen_procs']})"])
    return rows


def _cpu_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    from bench.stats import RELEVANT

    rows = []
    for c in cells:
        relevant = RELEVANT[c["target"]]
        per = [_fmt(c["cpu_s_per_1k"].get(p, 0.0), 2) if p in relevant else "" for p in PROCESS_COLUMNS]
        rows.append([c["tool"], str(c["clients"]), c["target"], *per, _fmt(c["server_cpu_s_per_1k"], 2)])
    return rows


def _comparison_rows(comparisons: list[dict[str, Any]]) -> list[list[str]]:
    return [[r["tool"], str(r["clients"]), _fmt(r["p50_ratio_c_over_b"], 2), _fmt(r["throughput_ratio_c_over_b"], 2),
             _fmt(r["added_p50_ms_c_minus_a"], 2), _fmt(r["added_p50_ms_b_minus_a"], 2),
             _fmt(r["added_ratio_c_over_b"], 2), _fmt(r["ttfp_p50_ms_c_minus_b"], 2)] for r in comparisons]


def wrap(text: str) -> list[str]:
    """Prose lines of at most 100 characters: the repository's markdownlint rule (MD013)."""
    return textwrap.wrap(text, MD_WIDTH, break_long_words=False, break_on_hyphens=False)


def _section(title: str, intro: str = "") -> list[str]:
    return ["", f"## {title}", "", *([*wrap(intro), ""] if intro else [])]


def markdown(results: dict[str, Any]) -> str:
    m, cfg, cells = results["machine"], results["config"], results["cells"]
    out = [f"# LLM Caller benchmark, {m['date']}", "", *wrap(
        f"{m['cpu_model']}, {m['logical_cores']} logical cores, Python {m['python']}, MCP SDK {m['mcp_sdk']}; "
        f"protocol mode {cfg['mode']}, {cfg['rounds']} rounds, run took {results['duration_s']:.0f} s. "
        "(a) direct = HTTP to the OpenAI emulator, (b) baseline = one-process SDK `MCPServer`, "
        "(c) stack = gateway + workers under supervisord with bearer auth. Latencies of successful calls. "
        "CPU busy: share of all cores used by the benchmark's processes / by every process on the machine "
        "(a gap means something else was running).")]
    out += _section("Latency and throughput")
    out += _table(["tool", "clients", "target", "calls", "errors", "p50 ms", "p99 ms", "first progress p50 / p99 ms",
                   "calls/s", "CPU busy % ours / all", "loadgen busiest % (procs)"], _latency_rows(cells))
    out += _section("Full stack (c) against baseline (b) and direct (a)", "Added = p50 minus the direct p50.")
    out += _table(["tool", "clients", "p50 c/b", "calls/s c/b", "added c-a ms", "added b-a ms", "added c/b",
                   "first progress c-b ms"], _comparison_rows(results["comparisons"]))
    out += _section("CPU seconds per 1,000 calls", "psutil user + system deltas over each timed window.")
    out += _table(["tool", "clients", "target", *PROCESS_COLUMNS, "server side"], _cpu_rows(cells))
    out += _section("Peak RSS over the run (MB)")
    out += _table(["process", "peak MB"], [[k, _fmt(v)] for k, v in results["peak_rss_mb"].items()])
    out += _section("Targets")
    out += _table(["target", "measured", "limit", "result"],
                  [[t["target"], t["value"], t["limit"], t["result"]] for t in results["targets"]])
    return "\n".join(out) + "\n"


def write_results(results: dict[str, Any], out_dir: Path, stem: str = "latest") -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png``; returns their paths."""
    from bench.chart import draw

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("json", "md", "png")}
    paths["json"].write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    paths["md"].write_text(markdown(results))
    draw(results, paths["png"])
    return paths


def _equation_row(eq: dict[str, Any]) -> list[str]:
    (label, value), = eq["left"].items()
    right = " + ".join(f"{term} {n}" for term, n in eq["right"].items())
    return [eq["name"], f"{label} {value}", f"= {right} = {sum(eq['right'].values())}",
            "yes" if eq["holds"] else "NO"]


def soak_markdown(summary: dict[str, Any]) -> str:
    cfg, verdict = summary["config"], summary["verdict"]
    out = ["# LLM Caller soak", "", *wrap(
        f"{summary['calls']} calls through the full stack in {summary['duration_s']:.0f} s; "
        f"{cfg['clients']} clients, tools {', '.join(cfg['tools'])}, per-call timeout {cfg['timeout_s']:g} s; "
        f"{summary['faults_injected']} faults injected into {summary['provider_requests']} provider requests "
        f"({100 * (summary['fault_share_of_requests'] or 0):.1f}%).")]
    out += _section("Outcomes")
    out += _table(["outcome", "calls"], [[k, str(v)] for k, v in summary["outcomes"].items()])
    out += _section("RSS (MB)", "Mean of the first and of the last 10% of the samples after warm-up.")
    out += _table(["process", "first", "last", "growth %", "max", "judged", "within 10%"],
                  [[name, _fmt(g["first_mb"]), _fmt(g["last_mb"]), _fmt(g["growth_pct"], 2), _fmt(g["max_mb"]),
                    "yes" if g["judged"] else "info", "yes" if g["within_10pct"] else "NO"]
                   for name, g in summary["rss"].items()])
    clean = "PASS" if verdict["all_calls_ended_cleanly"] else "FAIL"
    memory = "PASS" if verdict["memory_within_10pct"] else "FAIL"
    tally = summary.get("fault_tally")
    if tally:
        out += _section("Faults, requests and retries", (
            f"Counted by the emulator, the bench and the {tally['worker']} worker's getHealth counters "
            f"({tally['restarts_seen']} worker restarts seen; {tally['priming_calls']} untimed priming calls "
            "included in the failed calls). Each equation must hold exactly."))
        out += _table(["equation", "left", "right", "holds"], [_equation_row(e) for e in tally["equations"]])
        modes = ", ".join(f"{mode} {n}" for mode, n in sorted(tally["faults_by_mode"].items()))
        out += ["", *wrap(f"Faults handed out by mode: {modes}.")]
    out += _section("Verdicts")
    out += [f"- every call ended in success or a taxonomy error, no hangs: **{clean}**",
            f"  (hangs {summary['hangs']}, non-taxonomy {summary['non_taxonomy'] or 0})",
            f"- every judged process within 10% RSS growth: **{memory}**"]
    if tally:
        accounted = "PASS" if verdict.get("faults_accounted") else "FAIL"
        broken = [e["name"] for e in tally["equations"] if not e["holds"]]
        out += [f"- every fault and provider request accounted for: **{accounted}**"
                + (f" (not holding: {', '.join(broken)})" if broken else "")]
    return "\n".join(out) + "\n"

"""Comparisons within one run: full stack (c) against baseline (b) and direct (a), and the targets.

Only ratios and differences measured in the same run are judged, never absolute
numbers: those depend on the machine, these mostly on the software.
"""

from __future__ import annotations

from typing import Any

from bench.stack_names import WORKERS

__all__ = ["RSS_LIMIT_MB", "STACK_PROCS", "comparisons", "targets"]

STACK_PROCS = ("gateway", *WORKERS)
RSS_LIMIT_MB = 250.0

Cells = list[dict[str, Any]]


def _find(cells: Cells, target: str, tool: str, clients: int) -> dict[str, Any] | None:
    for cell in cells:
        if (cell["target"], cell["tool"], cell["clients"]) == (target, tool, clients):
            return cell
    return None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 3) if top is not None and bottom else None


def _diff(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def comparisons(cells: Cells) -> list[dict[str, Any]]:
    """Per (tool, clients): (c)/(b) for p50 and calls/s, and latency added over direct."""
    rows = []
    keys = sorted({(c["tool"], c["clients"]) for c in cells}, key=lambda k: (k[0], k[1]))
    for tool, clients in keys:
        a, b, c = (_find(cells, t, tool, clients) for t in ("direct", "baseline", "stack"))
        if a is None or b is None or c is None:
            continue
        added_b, added_c = _diff(b["p50_ms"], a["p50_ms"]), _diff(c["p50_ms"], a["p50_ms"])
        rows.append({
            "tool": tool, "clients": clients,
            "p50_ratio_c_over_b": _ratio(c["p50_ms"], b["p50_ms"]),
            "throughput_ratio_c_over_b": _ratio(c["calls_per_s"], b["calls_per_s"]),
            "added_p50_ms_c_minus_a": added_c,
            "added_p50_ms_b_minus_a": added_b,
            "added_ratio_c_over_b": _ratio(added_c, added_b),
            "ttfp_p50_ms_c_minus_b": _diff(c["ttfp_p50_ms"], b["ttfp_p50_ms"]),
        })
    return rows


def _verdict(name: str, ok: bool | None, value: str, limit: str) -> dict[str, Any]:
    result = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return {"target": name, "value": value, "limit": limit, "result": result}


def _added_latency(cells: Cells) -> dict[str, Any]:
    a, b, c = (_find(cells, t, "chat", 1) for t in ("direct", "baseline", "stack"))
    name = "chat, 1 client: full-stack added p50 vs baseline's"
    if a is None or b is None or c is None or None in (a["p50_ms"], b["p50_ms"], c["p50_ms"]):
        return _verdict(name, None, "not measured", "<= 1.2x")
    added_b, added_c = b["p50_ms"] - a["p50_ms"], c["p50_ms"] - a["p50_ms"]
    ok = added_c <= 1.2 * added_b
    value = f"{added_c:.2f} ms vs {added_b:.2f} ms ({added_c / added_b:.2f}x)" if added_b > 0 else f"{added_c:.2f} ms"
    return _verdict(name, ok, value, "<= 1.2x")


def _throughput(cells: Cells) -> dict[str, Any]:
    b, c = _find(cells, "baseline", "chat", 32), _find(cells, "stack", "chat", 32)
    name = "chat, 32 clients: full-stack calls/s vs baseline, no errors, p99 <= 3x p50"
    if b is None or c is None or not b["calls_per_s"] or c["p50_ms"] is None:
        return _verdict(name, None, "not measured", ">= 1.0x")
    ratio = (c["calls_per_s"] or 0.0) / b["calls_per_s"]
    tail = c["p99_ms"] / c["p50_ms"]
    ok = ratio >= 1.0 and c["errors"] == 0 and tail <= 3.0
    value = (f"{c['calls_per_s']:.0f} vs {b['calls_per_s']:.0f} calls/s ({ratio:.2f}x), "
             f"{c['errors']} errors, p99/p50 {tail:.2f}")
    return _verdict(name, ok, value, ">= 1.0x, 0 errors, <= 3.0")


def _first_progress(cells: Cells) -> dict[str, Any]:
    b, c = _find(cells, "baseline", "chatStream", 1), _find(cells, "stack", "chatStream", 1)
    name = "chatStream, 1 client: time to first progress (p50) vs baseline"
    if b is None or c is None or b["ttfp_p50_ms"] is None or c["ttfp_p50_ms"] is None:
        return _verdict(name, None, "not measured", "<= baseline + 1 ms")
    delta = c["ttfp_p50_ms"] - b["ttfp_p50_ms"]
    value = f"{c['ttfp_p50_ms']:.2f} ms vs {b['ttfp_p50_ms']:.2f} ms ({delta:+.2f} ms)"
    return _verdict(name, delta <= 1.0, value, "<= baseline + 1 ms")


def _memory(peak_rss_mb: dict[str, float]) -> dict[str, Any]:
    seen = [p for p in STACK_PROCS if p in peak_rss_mb]
    name = "gateway + all workers: sum of peak RSS"
    if not seen:
        return _verdict(name, None, "not measured", f"<= {RSS_LIMIT_MB:.0f} MB")
    total = sum(peak_rss_mb[p] for p in seen)
    return _verdict(name, total <= RSS_LIMIT_MB, f"{total:.1f} MB", f"<= {RSS_LIMIT_MB:.0f} MB")


def targets(cells: Cells, peak_rss_mb: dict[str, float]) -> list[dict[str, Any]]:
    return [_added_latency(cells), _throughput(cells), _first_progress(cells), _memory(peak_rss_mb)]

"""Plain-text reports: the scenario x client table and the conformance summary."""

from __future__ import annotations

import json
from collections import Counter

from uat.conformance import EXPECTED_FAILURES, ConformanceReport
from uat.known_issues import KNOWN_ISSUES
from uat.matrix import Row
from uat.node_tools import UAT_DIR

__all__ = ["conformance_text", "matrix_text", "package_version"]


def package_version(name: str) -> str:
    try:
        manifest = json.loads((UAT_DIR / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return "?"
    return str(manifest.get("version", "?"))


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return lines


def matrix_text(rows: list[Row], labels: tuple[str, ...]) -> str:
    body = []
    for row in rows:
        cells = [f"{row.cells[label].status:<5} {row.cells[label].latency_ms:8.1f} ms" for label in labels]
        body.append([row.scenario.name, *cells])
    lines = ["", "UAT summary (python-sdk and typescript-sdk latency: the calls alone; inspector: whole CLI runs "
                 "incl. Node start-up)",
             *_table(["scenario", *labels], body)]
    notes = [f"  [{cell.status}] {row.scenario.name} / {label}: {cell.detail}"
             for row in rows for label in labels if (cell := row.cells[label]).status != "PASS"]
    if notes:
        lines += ["", "Notes:", *notes]
    seen_issues = {cell.issue for row in rows for cell in row.cells.values() if cell.status == "XFAIL"}
    issues = [f"  {issue.key} ({issue.client}): {issue.summary}" for issue in KNOWN_ISSUES if issue.key in seen_issues]
    if issues:
        lines += ["", "Known gateway issues reproduced (reported, not fixed here):", *issues]
    counts = Counter(cell.status for row in rows for cell in row.cells.values())
    lines += ["", "Scenarios: " + ", ".join(f"{counts[s]} {s}" for s in ("PASS", "N/A", "XFAIL", "XPASS", "FAIL"))]
    return "\n".join(lines)


def conformance_text(report: ConformanceReport) -> str:
    version = package_version("@modelcontextprotocol/conformance")
    lines = ["", f"Conformance (@modelcontextprotocol/conformance {version}, through the bearer proxy)"]
    by_scenario: dict[str, Counter[str]] = {}
    for check in report.checks:
        tally = by_scenario.setdefault(check.scenario, Counter())
        expected = (check.scenario, check.check_id) in EXPECTED_FAILURES
        tally["expected failure" if check.status == "FAILURE" and expected else check.status] += 1
    columns = ["SUCCESS", "expected failure", "FAILURE", "WARNING", "SKIPPED"]
    body = [[name, *(str(tally[c]) for c in columns)] for name, tally in by_scenario.items()]
    lines += _table(["scenario", "passed", "expected fail", "UNEXPECTED FAIL", "warning", "skipped"], body)
    seen_expected = sorted(report.failed_keys & EXPECTED_FAILURES.keys())
    lines += ["", "Expected failures (not applicable to this server):",
              *(f"  {s} / {i}: {EXPECTED_FAILURES[(s, i)]}" for s, i in seen_expected)]
    if report.unexpected_failures:
        lines += ["", "UNEXPECTED failures:",
                  *(f"  {c.scenario} / {c.check_id}: {c.message}" for c in report.unexpected_failures)]
    if report.stale_expectations:
        lines += ["", "Expected to fail but passed (update uat/conformance.py):",
                  *(f"  {s} / {i}" for s, i in report.stale_expectations)]
    lines += [f"  error: {error}" for error in report.errors]
    lines += ["", f"Conformance: {'OK' if report.ok else 'FAILED'}"]
    return "\n".join(lines)

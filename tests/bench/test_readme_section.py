"""bench.readme: the README's benchmark section is rewritten between its markers and nowhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.readme import BEGIN, END, readme_section, update_readme


def _cell(tool: str, clients: int, target: str, p50: float) -> dict[str, Any]:
    return {"tool": tool, "clients": clients, "target": target, "p50_ms": p50, "p99_ms": p50 * 2,
            "calls_per_s": 1000 / p50, "server_cpu_s_per_1k": 1.5, "ttfp_p50_ms": p50 / 2}


RESULTS: dict[str, Any] = {
    "machine": {"date": "2026-11-29 12:00 UTC", "cpu_model": "Test CPU", "logical_cores": 2, "memory_gb": 4,
                "python": "3.11.7", "mcp_sdk": "2.3.0"},
    "config": {"mode": "2026-07-28", "rounds": 3},
    "cells": [_cell("chat", 1, "direct", 1.0), _cell("chat", 1, "baseline", 4.0), _cell("chat", 1, "stack", 5.0),
              _cell("chatStream", 1, "baseline", 6.0), _cell("chatStream", 1, "stack", 7.0)],
    "targets": [{"target": "chat, 1 client", "value": "4.00 ms vs 3.00 ms (1.33x)", "limit": "<= 1.2x",
                 "result": "FAIL"}],
}


def test_the_section_names_the_machine_and_shows_every_measured_cell_and_target() -> None:
    text = readme_section(RESULTS)
    assert text.startswith(BEGIN) and text.endswith(END)
    assert "Test CPU, 2 logical cores" in text
    assert "| chat | 1 | 1.00 / 4.00 / 5.00 |" in text
    assert "| chatStream | 1 | - / 6.00 / 7.00 |" in text and "| 3.00 / 3.50 |" in text
    assert "| chat, 1 client | 4.00 ms vs 3.00 ms (1.33x) | <= 1.2x | FAIL |" in text
    assert all(len(line) <= 100 for line in text.splitlines() if not line.startswith("|"))


def test_update_replaces_only_the_marked_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nold figures\n{END}\n\nafter\n")
    assert update_readme(readme, RESULTS)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n" + BEGIN) and text.endswith(END + "\n\nafter\n")
    assert "old figures" not in text and "Test CPU" in text


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    assert not update_readme(readme, RESULTS)
    assert readme.read_text() == "# Title\n"

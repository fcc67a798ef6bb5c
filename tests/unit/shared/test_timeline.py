"""shared.timeline records marks only when asked; bench.timeline lines them up per call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.timeline import BASELINE_MARKS, STACK_MARKS, cycles, read_marks, summarise
from cli.stack import REPO_ROOT
from shared import timeline
from shared.timeline import ENV_VAR

_SCRIPT = "from shared.timeline import mark\nfor n in ('a', 'b', 'c'):\n    mark(n)\n"


def _run(env_extra: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR} | env_extra
    subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO_ROOT, env=env, check=True, timeout=30)


def test_marks_are_written_at_exit_when_a_folder_is_named(tmp_path: Path) -> None:
    _run({ENV_VAR: str(tmp_path)})
    marks = read_marks(tmp_path)
    assert [name for _, name in marks] == ["a", "b", "c"]
    assert marks[0][0] <= marks[1][0] <= marks[2][0]


def test_nothing_is_recorded_by_default() -> None:
    assert ENV_VAR not in os.environ  # the test run itself is not being timed
    timeline.mark("gateway.http_in")
    timeline.flush()
    assert not timeline.enabled() and timeline._marks == []


def _call(start: int, names: tuple[str, ...], step: int = 1000) -> list[tuple[int, str]]:
    return [(start + i * step, name) for i, name in enumerate(names)]


def test_calls_are_split_by_target_and_hops_are_medians_of_differences() -> None:
    marks = (_call(0, BASELINE_MARKS) + _call(100_000, STACK_MARKS, step=2000)
             + _call(200_000, STACK_MARKS, step=4000) + [(250_000, "worker.request_in")]  # outside any call
             + _call(300_000, ("client.send", "client.done")))  # a direct call: neither target
    by_target = cycles(sorted(marks))
    assert len(by_target["baseline"]) == 1 and len(by_target["stack"]) == 2
    summary = summarise(by_target)
    assert all(row["median_us"] == 3.0 for row in summary["stack_hops"])  # median of 2 and 4 us
    assert all(row["median_us"] == 1.0 for row in summary["baseline_hops"])
    assert summary["total_us"] == {"baseline": 6.0, "stack": 42.0}
    first = summary["shared_segments"][0]
    assert first["baseline_us"] == 1.0 and first["stack_us"] == 3.0 and first["difference_us"] == 2.0


def test_only_calls_sent_inside_a_timed_window_count() -> None:
    marks = _call(0, STACK_MARKS) + _call(100_000, STACK_MARKS) + _call(200_000, STACK_MARKS)
    assert len(cycles(marks, windows=[(50_000, 150_000)])["stack"]) == 1


def test_a_missing_folder_is_reported_not_raised(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR} | {ENV_VAR: str(tmp_path / "absent")}
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr

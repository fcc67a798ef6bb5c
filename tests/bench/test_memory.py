"""``python -m bench memory`` and the memory targets: readings per process, judged per worker.

The figures themselves are measured, never asserted (they depend on the machine); these
tests check that every stack process is read in every phase and how the targets judge.
"""

from __future__ import annotations

import os

import pytest

from bench.memory import PHASES, MemoryConfig, memory_markdown, read_process, run_memory
from bench.verdicts import WORKER_IDLE_LIMIT_MB, idle_worker_target, stack_total_target


def test_the_idle_goal_judges_the_largest_worker_and_shows_each() -> None:
    over = WORKER_IDLE_LIMIT_MB + 1
    verdict = idle_worker_target({"gateway": 80.0, "worker:openai": 30.0, "worker:lmstudio": over})
    assert verdict["result"] == "FAIL" and verdict["value"] == f"openai 30.0, lmstudio {over:.1f} MB"
    # The gateway is not a worker: its RSS is not judged here.
    assert idle_worker_target({"gateway": 80.0, "worker:openai": 30.0})["result"] == "PASS"
    assert idle_worker_target({})["result"] == "n/a"


def test_the_stack_total_sums_the_gateway_and_the_workers_only() -> None:
    verdict = stack_total_target({"gateway": 100.0, "worker:openai": 40.0, "supervisord": 500.0}, "idle")
    assert verdict["target"] == "gateway + all workers: sum of idle RSS" and verdict["value"] == "140.0 MB"
    assert verdict["result"] == "PASS"


def test_a_process_reads_its_rss_pss_and_uss() -> None:
    reading = read_process(os.getpid())  # a process may read its own smaps_rollup
    assert reading is not None and reading.rss_mb > 0
    assert reading.pss_mb is not None and reading.uss_mb is not None
    assert 0 < reading.uss_mb <= reading.pss_mb <= reading.rss_mb + 0.1  # rounding


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_tiny_memory_run_reads_every_stack_process_in_every_phase() -> None:
    summary = run_memory(MemoryConfig(calls=1, settle_s=0.2))
    assert set(summary["outcomes"]) == {"ok"}
    for phase in PHASES:
        assert {"gateway", "worker:openai", "worker:anthropic", "worker:lmstudio"} <= set(summary["phases"][phase])
    print("\n" + memory_markdown(summary))
    assert [t["result"] in ("PASS", "FAIL") for t in summary["targets"]] == [True, True]

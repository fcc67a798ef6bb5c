"""The benchmark machinery, with tiny counts, so it cannot rot between `make bench` runs.

Runs ``python -m bench`` end to end (emulators, full stack, baseline server, spawned
load generators, JSON/markdown/PNG) with a handful of calls, and checks the soak's and
the profiler's pieces that need no long run.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from bench.fault_tally import fault_tally
from bench.procs import RssSample
from bench.profile import summarise_speedscope
from bench.soak import FaultFeeder, rss_growth, taxonomy_types
from cli.stack import REPO_ROOT
from emulators.control import EmulatorControl
from harness.sandbox import EmulatorProcess


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_tiny_benchmark_run_writes_every_result(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--tools", "chat,chatStream,embed", "--concurrency", "1,2",
               "--calls", "4", "--rounds", "1", "--warmup-calls", "0", "--loadgen-procs", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=55,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    results = orjson.loads((tmp_path / "latest.json").read_bytes())
    cells = results["cells"]
    assert {(c["target"], c["tool"], c["clients"]) for c in cells} == {
        (t, tool, n) for t in ("direct", "baseline", "stack") for tool in ("chat", "chatStream", "embed")
        for n in (1, 2)
    }
    assert all(c["errors"] == 0 and c["calls"] == 4 and c["p50_ms"] > 0 for c in cells), cells
    assert all(c["ttfp_p50_ms"] is not None for c in cells if c["tool"] == "chatStream")
    stack = next(c for c in cells if c["target"] == "stack")
    assert stack["cpu_s_per_1k"]["gateway"] >= 0 and stack["peak_rss_mb"]["gateway"] > 10
    assert {t["result"] for t in results["targets"]} <= {"PASS", "FAIL", "n/a"}  # n/a: 32 clients not run
    assert "## Targets" in (tmp_path / "latest.md").read_text() and "## Targets" in done.stdout
    assert (tmp_path / "latest.png").read_bytes()[:4] == b"\x89PNG"


def test_rss_growth_compares_the_first_and_last_tenth_after_warm_up() -> None:
    timeline = [RssSample(float(t), {"gateway": 100.0 + (50 if t < 10 else t / 10), "emulator": 40.0})
                for t in range(100)]
    growth = rss_growth(timeline, warmup_fraction=0.1)  # the high warm-up samples are left out
    assert growth["gateway"]["judged"] and growth["gateway"]["within_10pct"]
    assert 7 < growth["gateway"]["growth_pct"] < 9
    assert not growth["emulator"]["judged"]


def test_taxonomy_types_cover_the_documented_errors() -> None:
    assert {"rate_limited", "provider_error", "stream_interrupted", "overloaded", "unavailable"} <= taxonomy_types()


def test_fault_tally_holds_only_when_every_fault_and_request_is_accounted_for() -> None:
    emulator = {"requests": 140, "faults": 14, "faults_by_path": {"/v1/models": 3, "/v1/chat/completions": 11},
                "faults_by_mode": {"status": 9, "drop": 5}}
    counters = {"attempts": 100, "retries": 8, "probes": 2, "failed_probes": 1, "failed_attempts": 11,
                "gave_up": 3, "retry_dropped": 0, "refused": 1, "cancelled": 0}
    tally = fault_tally(emulator, 30, 2, counters, failed_calls=4)
    assert tally["holds"], tally["equations"]
    assert {e["name"] for e in tally["equations"]} >= {"requests", "faults on calls", "failed calls"}
    # One fault struck after the answer was complete: no attempt failed for it.
    broken = fault_tally(emulator, 30, 2, {**counters, "failed_attempts": 10, "gave_up": 2}, failed_calls=3)
    assert not broken["holds"]
    assert [e["name"] for e in broken["equations"] if not e["holds"]] == ["faults on calls"]
    # A request the worker never counted (a retry hidden in its HTTP client).
    assert not fault_tally({**emulator, "requests": 141}, 30, 2, counters, failed_calls=4)["holds"]


def test_fault_feeder_keeps_about_the_asked_share_queued(tmp_path: Path) -> None:
    emulators = EmulatorProcess(tmp_path, {"openai": "sk-a", "anthropic": "sk-b"})
    emulators.start()
    try:
        with EmulatorControl(emulators.url("openai")) as control:
            feeder = FaultFeeder(control, rate=0.5)
            feeder.top_up()
            for _ in range(20):
                with contextlib.suppress(httpx.HTTPError):  # a "drop" fault closes the connection
                    httpx.get(emulators.url("openai") + "/v1/models", headers={"authorization": "Bearer sk-a"})
            feeder.top_up()
            queued = sum(f["left"] for f in control.pending_faults())
            # 20 requests at 0.5, plus the few queued ahead, less the faults those requests took.
            assert 0 < feeder.added <= 20 and queued < feeder.added
            assert int(control.stats()["requests"]) == 20
    finally:
        emulators.stop()


def test_speedscope_summary_counts_self_and_inclusive_time(tmp_path: Path) -> None:
    frames = [{"name": "main", "file": f"{REPO_ROOT}/gateway/app.py", "line": 1},
              {"name": "validate", "file": "/x/site-packages/pydantic/main.py", "line": 2},
              {"name": "dumps", "file": "/usr/lib/python3.11/json/__init__.py", "line": 3}]
    profile = {"type": "sampled", "name": "MainThread", "samples": [[0, 1], [0, 1], [0, 2], [0]],
               "weights": [1.0, 1.0, 1.0, 1.0]}
    path = tmp_path / "p.json"
    path.write_bytes(orjson.dumps({"shared": {"frames": frames}, "profiles": [profile]}))
    summary = summarise_speedscope(path)
    assert summary["self"][0] == {"name": "validate (pydantic/main.py)", "pct": 50.0}
    # "main" is on every sample: the event loop's spine is left out of the inclusive list.
    assert [r["name"] for r in summary["inclusive"]] == ["validate (pydantic/main.py)", "dumps (json/__init__.py)"]
    assert {r["name"]: r["pct"] for r in summary["by_package"]} == {
        "pydantic": 50.0, "stdlib:json": 25.0, "gateway (ours)": 25.0}


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_tiny_timeline_run_sees_every_hop(tmp_path: Path) -> None:
    # The marks must survive the whole chain: environment through the launcher's scrub and
    # supervisord, every process writing its file at exit, and the load generator's calls.
    command = [sys.executable, "-m", "bench", "timeline", "--calls", "6", "--rounds", "2", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=85,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads((tmp_path / "timeline-latest.json").read_bytes())
    assert summary["calls"] == {"baseline": 6, "stack": 6}
    for key in ("stack_hops", "baseline_hops"):
        assert all(row["calls"] == 6 and row["median_us"] is not None for row in summary[key]), summary[key]
    assert all(row["difference_us"] is not None for row in summary["shared_segments"])
    assert summary["total_us"]["stack"] > 0 and summary["total_us"]["baseline"] > 0
    assert "## Side by side" in (tmp_path / "timeline-latest.md").read_text()


@pytest.mark.parametrize("argv", [["timeline", "--rounds", "0"], ["run", "--calls", "x"], ["soak", "--clients", "0"],
                                  ["profile", "--seconds", "-1"], ["run", "--warmup-calls", "-1"]])
def test_bad_counts_are_refused_with_a_message_not_a_traceback(argv: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and ("must be at least" in err or "whole number" in err)
    assert "Traceback" not in err

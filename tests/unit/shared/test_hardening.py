"""shared.hardening in real child processes: no core, non-dumpable, pid records that never name a stranger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT
from shared.hardening import leftover_processes, record_path, start_time
from tests.polling import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux")

_REPORT = ("import resource, sys; from shared.hardening import harden, is_dumpable; "
           "harden('worker-x', {'LLMC_RUN_DIR': sys.argv[1]}); "
           "print(is_dumpable(), resource.getrlimit(resource.RLIMIT_CORE))")


def test_harden_turns_off_cores_and_dumpable_and_records_the_process(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _REPORT, str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=30, check=True)
    print(f"\nhardened child reports (dumpable, RLIMIT_CORE): {done.stdout.strip()}")
    assert done.stdout.strip() == "False (0, 0)"
    record = record_path(tmp_path, "worker-x")
    fields = record.read_text().split()
    assert fields[2] == "dumpable=0" and oct(record.stat().st_mode & 0o777) == "0o600"
    assert leftover_processes(tmp_path) == []  # that child has exited: its record is dropped
    assert not record.exists()


def _sleeper(*argv: str) -> subprocess.Popen[bytes]:
    """A child that stays alive (its sleep is what it is for) with ``argv`` on its command line."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


def _exec_done(process: subprocess.Popen[bytes]) -> bool:
    """Whether the child runs its own command yet (until exec, /proc shows the parent's command line)."""
    return b"time.sleep(60)" in Path(f"/proc/{process.pid}/cmdline").read_bytes()


def test_leftovers_are_only_live_processes_of_ours_with_their_recorded_start_time(tmp_path: Path) -> None:
    ours, reused, stranger = _sleeper("-m", "workers", "a"), _sleeper("-m", "workers", "b"), _sleeper("other")
    try:
        wait_until(lambda: all(_exec_done(p) for p in (ours, reused, stranger)), 10, "the three children run")
        folder = tmp_path / "pids"
        folder.mkdir()
        started = {p.pid: start_time(p.pid) for p in (ours, reused, stranger)}
        (folder / "worker-a.pid").write_text(f"{ours.pid} {started[ours.pid]} dumpable=0\n")
        (folder / "worker-b.pid").write_text(f"{reused.pid} {int(started[reused.pid] or 0) + 3}\n")
        (folder / "gateway.pid").write_text(f"{stranger.pid} {started[stranger.pid]}\n")
        (folder / "garbage.pid").write_text("not a record\n")
        found = leftover_processes(tmp_path)
        print(f"\nrecords: 4; live processes of ours found: {[r.pid for r in found]} (expected [{ours.pid}])")
        assert [record.pid for record in found] == [ours.pid]
        assert sorted(p.name for p in folder.iterdir()) == ["worker-a.pid"]
    finally:
        for process in (ours, reused, stranger):
            process.kill()
            process.wait()

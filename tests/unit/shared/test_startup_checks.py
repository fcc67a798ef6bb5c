"""shared.startup_checks and the status view: a refused start leaves its reason, status shows it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.status_view import read_refusals, render_status
from shared import startup_checks
from shared.startup_checks import EX_CONFIG, manifest_problem, refusal_file, refuse_start_unless_verified


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"LLMC_CONFIG_DIR": str(tmp_path / "config"), "LLMC_RUN_DIR": str(tmp_path / "run"), **extra}


def test_refusal_exits_78_and_records_the_reason_privately(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(tmp_path, LLMC_MANIFEST_PUBKEY=str(tmp_path / "absent.pub.pem"))
    with pytest.raises(SystemExit) as caught:
        refuse_start_unless_verified("openai", "llm-caller worker openai", env)
    assert caught.value.code == EX_CONFIG
    assert "llm-caller worker openai: signed manifest check failed" in capsys.readouterr().err
    recorded = refusal_file(tmp_path / "run", "openai")
    assert "refused to start (exit 78)" in recorded.read_text() and "not found" in recorded.read_text()
    assert recorded.stat().st_mode & 0o777 == 0o600 and recorded.parent.stat().st_mode & 0o777 == 0o700


def test_a_start_that_passes_clears_an_old_refusal(tmp_path: Path) -> None:
    recorded = refusal_file(tmp_path / "run", "gateway")
    recorded.parent.mkdir(parents=True)
    recorded.write_text("old refusal")
    refuse_start_unless_verified("gateway", "llm-caller gateway", _env(tmp_path))  # check not enabled
    assert not recorded.exists()


def test_a_strange_program_name_cannot_write_outside_the_refusals_folder(tmp_path: Path) -> None:
    env = _env(tmp_path, LLMC_MANIFEST_PUBKEY=str(tmp_path / "absent.pub.pem"))
    with pytest.raises(SystemExit):
        refuse_start_unless_verified("../../escape", "x", env)
    assert os.listdir(tmp_path / "run" / "refusals") == ["unnamed.txt"]


def _proc(name: str, state: str, group: str = "workers") -> dict[str, str]:
    return {"name": name, "group": group, "statename": state, "description": "Dec 07 06:19 PM"}


def test_status_shows_why_a_stopped_process_refused_and_ignores_running_ones(tmp_path: Path) -> None:
    for program, reason in (("openai", "line one\n  - added (not in the manifest): gateway/x.pyc"),
                            ("lmstudio", "stale reason")):
        path = refusal_file(tmp_path, program)
        path.parent.mkdir(exist_ok=True)
        path.write_text(reason)
    procs = [_proc("gateway", "RUNNING", "gateway"), _proc("openai", "FATAL"), _proc("lmstudio", "RUNNING")]
    lines = render_status(procs, None, read_refusals(tmp_path, procs))
    at = next(i for i, line in enumerate(lines) if line.startswith("workers:openai"))
    assert lines[at + 1] == "  why: line one"
    assert lines[at + 2].strip() == "- added (not in the manifest): gateway/x.pyc"
    assert not any("stale reason" in line for line in lines)


@pytest.mark.parametrize(("die", "why"), [
    (lambda: os.kill(os.getpid(), 9), "exit status -9"),  # killed: nothing on the pipe
    (lambda: 1 / 0, "ZeroDivisionError"),  # a bug in the check
])
def test_a_check_that_does_not_finish_is_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  die: Callable[[], object], why: str) -> None:
    """Enabled stays fail-closed although the check runs in a forked child."""
    monkeypatch.setattr(startup_checks, "_verify", lambda *_: die())  # the forked child inherits it
    problem = manifest_problem(tmp_path, {"LLMC_MANIFEST_PUBKEY": str(tmp_path / "m.pub.pem")})
    assert problem == f"signed manifest check failed: the check did not finish ({why})"


def test_the_childs_problem_reaches_the_parent_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup_checks, "_verify", lambda *_: "signed manifest check failed: é\nline two")
    problem = manifest_problem(tmp_path, {"LLMC_MANIFEST_PUBKEY": str(tmp_path / "m.pub.pem")})
    assert problem == "signed manifest check failed: é\nline two"
    assert manifest_problem(tmp_path, {}) is None  # not enabled

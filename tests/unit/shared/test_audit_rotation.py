"""shared.audit: the trail rotates at LLMC_LOG_MAX_BYTES and keeps LLMC_LOG_BACKUPS old files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.audit import audit_event, rotation_limits


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (10 * 1024 * 1024, 5)),
    ({"LLMC_LOG_MAX_BYTES": "64KB", "LLMC_LOG_BACKUPS": "3"}, (64 * 1024, 3)),
    ({"LLMC_LOG_MAX_BYTES": "2mb", "LLMC_LOG_BACKUPS": "0"}, (2 * 1024 * 1024, 0)),
    ({"LLMC_LOG_MAX_BYTES": "1048576"}, (1048576, 5)),
    ({"LLMC_LOG_MAX_BYTES": "lots", "LLMC_LOG_BACKUPS": "-1"}, (10 * 1024 * 1024, 5)),
    ({"LLMC_LOG_MAX_BYTES": "0"}, (10 * 1024 * 1024, 5)),  # supervisord's "never": here the default
])
def test_limits_follow_the_log_settings(env: dict[str, str], expected: tuple[int, int]) -> None:
    assert rotation_limits(env) == expected


def test_the_trail_rotates_and_keeps_only_the_newest_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMC_LOG_MAX_BYTES", "2KB")
    monkeypatch.setenv("LLMC_LOG_BACKUPS", "2")
    trail = tmp_path / "audit.jsonl"
    for n in range(300):
        audit_event(trail, "probe", n=n, pad="x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all((tmp_path / name).stat().st_size <= 2048 for name in files)
    assert all(oct((tmp_path / name).stat().st_mode & 0o777) == "0o600" for name in files)
    lines = [line for name in reversed(files) for line in (tmp_path / name).read_bytes().splitlines()]
    numbers = [orjson.loads(line)["n"] for line in lines]
    assert numbers == sorted(numbers) and numbers[-1] == 299  # oldest kept first, newest last, no line split


def test_no_backups_means_the_full_file_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMC_LOG_MAX_BYTES", "1KB")
    monkeypatch.setenv("LLMC_LOG_BACKUPS", "0")
    trail = tmp_path / "audit.jsonl"
    for n in range(100):
        audit_event(trail, "probe", n=n)
    assert trail.stat().st_size <= 1024 and not (tmp_path / "audit.jsonl.1").exists()

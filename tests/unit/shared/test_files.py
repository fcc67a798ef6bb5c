"""The atomic writer: a failed write leaves the old file and no debris; secrets are never world-readable."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared import files
from shared.files import FileWriteError, existing_mode, write_json_atomic, write_secret_file

OLD = b'{"old": true}\n'


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "data.json"
    path.write_bytes(OLD)
    return path


def test_writes_indented_json_with_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    assert write_json_atomic(path, {"b": 1, "a": [1, 2]}) is None
    assert path.read_bytes() == orjson.dumps({"b": 1, "a": [1, 2]}, option=orjson.OPT_INDENT_2) + b"\n"
    assert _mode(path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json"]


def test_replaces_existing_file_with_requested_mode(target: Path) -> None:
    write_json_atomic(target, {"new": 1}, mode=0o600)
    assert orjson.loads(target.read_bytes()) == {"new": 1}
    assert _mode(target) == 0o600


def test_failed_rename_leaves_old_file_and_no_temp_or_backup(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(FileWriteError) as caught:
        write_json_atomic(target, {"new": 1}, backup=True)
    assert target.read_bytes() == OLD
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert str(target) in str(caught.value)
    assert "unchanged" in str(caught.value)


def test_full_disk_midway_keeps_old_file_with_clear_message(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(FileWriteError, match="disk is full") as caught:
        write_json_atomic(target, {"new": 1})
    assert "fix:" in str(caught.value)
    assert target.read_bytes() == OLD
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_interrupt_midway_is_reraised_and_cleans_up(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(target, {"new": 1})
    assert target.read_bytes() == OLD
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_unserialisable_data_fails_before_touching_disk(target: Path) -> None:
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()}, backup=True)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert target.read_bytes() == OLD


def test_backup_keeps_old_content_beside_the_file(target: Path) -> None:
    target.chmod(0o600)
    backup = write_json_atomic(target, {"new": 1}, backup=True)
    assert backup is not None
    assert backup.parent == target.parent
    assert re.fullmatch(r"data\.json\.\d{8}T\d{6}Z(-\d+)?\.bak", backup.name)
    assert backup.read_bytes() == OLD
    assert _mode(backup) == 0o600  # a backup is never more readable than the original


def test_backups_in_the_same_second_do_not_overwrite_each_other(target: Path) -> None:
    first = write_json_atomic(target, {"n": 1}, backup=True)
    second = write_json_atomic(target, {"n": 2}, backup=True)
    assert first is not None and second is not None
    assert first != second
    assert first.read_bytes() == OLD
    assert orjson.loads(second.read_bytes()) == {"n": 1}


def test_only_the_newest_backups_are_kept(target: Path) -> None:
    other = target.with_name("other.json")
    other.write_bytes(OLD)
    write_json_atomic(other, {"unrelated": True}, backup=True)  # another file's backups are not counted
    saved = [write_json_atomic(target, {"n": n}, backup=True) for n in range(files.KEEP_BACKUPS + 5)]
    kept = [path for path, _stamp, _seq in files.dated_backups(target)]
    assert kept == list(reversed(saved[5:]))  # newest first, the five oldest removed
    assert orjson.loads(kept[0].read_bytes()) == {"n": files.KEEP_BACKUPS + 3}
    assert len(files.dated_backups(other)) == 1


def test_backup_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert write_json_atomic(tmp_path / "fresh.json", {}, backup=True) is None


def test_secret_file_is_0600_from_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(files.os, "open", spy)
    old_umask = os.umask(0)  # the most permissive umask must still not widen the file
    try:
        write_secret_file(tmp_path / "openai", "sk-test")
    finally:
        os.umask(old_umask)
    path = tmp_path / "openai"
    assert path.read_text() == "sk-test"
    assert _mode(path) == 0o600
    temp_opens = [(flags, mode) for name, flags, mode in opened if name.endswith(".tmp")]
    assert temp_opens and all(flags & os.O_EXCL and mode == 0o600 for flags, mode in temp_opens)


def test_secret_file_accepts_bytes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_secret_file(path, "first")
    write_secret_file(path, b"second")
    assert path.read_bytes() == b"second"
    assert _mode(path) == 0o600


def test_read_only_filesystem_gives_a_clean_error(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*_: Any, **__: Any) -> int:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.os, "open", read_only)
    with pytest.raises(FileWriteError) as caught:
        write_json_atomic(target, {"new": 1})
    message = str(caught.value)
    assert "read-only" in message and str(target.parent) in message and "fix:" in message
    assert "Traceback" not in message
    assert target.read_bytes() == OLD


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_folder_gives_a_clean_error(target: Path) -> None:
    target.parent.chmod(0o500)
    try:
        with pytest.raises(FileWriteError, match="read-only or not writable"):
            write_json_atomic(target, {"new": 1})
    finally:
        target.parent.chmod(0o700)
    assert target.read_bytes() == OLD


def test_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(FileWriteError, match="does not exist"):
        write_json_atomic(tmp_path / "nowhere" / "x.json", {})


def test_existing_mode(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert existing_mode(path, 0o640) == 0o640
    path.write_bytes(b"")
    path.chmod(0o604)
    assert existing_mode(path, 0o640) == 0o604


def test_exclusive_makes_a_second_holder_wait_then_gives_up_with_a_clear_error(target: Path) -> None:
    outcome: list[str] = []

    def second() -> None:
        try:
            with files.exclusive(target, wait_s=0.3):
                outcome.append("entered")
        except FileWriteError as exc:
            outcome.append(str(exc))

    with files.exclusive(target):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(5)
    assert len(outcome) == 1 and "being changed by another llm-caller command" in outcome[0]
    assert "fix: retry" in outcome[0]
    with files.exclusive(target, wait_s=0.3):  # released when the first block ended
        pass


def test_exclusive_leaves_a_missing_folder_missing_unless_asked(tmp_path: Path) -> None:
    with files.exclusive(tmp_path / "absent" / "registry.json"):
        pass
    assert not (tmp_path / "absent").exists()
    with files.exclusive(tmp_path / "made" / "registry.json", create_folder=True):
        pass
    assert (tmp_path / "made" / ".registry.json.lock").exists()

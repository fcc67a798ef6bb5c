"""Atomic saves that leave the old file whole when interrupted, and `config rollback`."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.assistant.store import Change, read_current, save, target_for
from cli.assistant.ui import CliUi
from cli.options import CommandRefused
from emulators.server import BackgroundEmulators
from shared import files
from shared.config import load_providers
from shared.settings import Settings
from tests.unit.cli.assistant.conftest import OPENAI_KEY, Run, add_openai, audit_lines, providers


def _add_lm(run: Run, name: str, *extra: str) -> tuple[int, str, str]:
    return run("config", "providers", "add", name, "--kind", "lmstudio", "--base-url", "http://127.0.0.1:9",
               "--model", "m1", "--no-probe", "--yes", *extra)


def _failing_replace(monkeypatch: pytest.MonkeyPatch, target: str, err: int) -> None:
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst).name == target:
            raise OSError(err, os.strerror(err))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _leftovers(cfg: Path) -> list[str]:
    return sorted(p.name for p in cfg.rglob("*.tmp"))


@pytest.mark.parametrize(("err", "message"), [(errno.ENOSPC, "the disk is full"),
                                              (errno.EROFS, "read-only or not writable")])
def test_a_write_interrupted_midway_leaves_the_old_file_valid(run: Run, emu: BackgroundEmulators, cfg: Path,
                                                              monkeypatch: pytest.MonkeyPatch, audit_file: Path,
                                                              err: int, message: str) -> None:
    assert add_openai(run, emu)[0] == 0
    before = (cfg / "providers.json").read_bytes()
    backups_before = sorted(cfg.glob("*.bak"))
    _failing_replace(monkeypatch, "providers.json", err)
    code, _, stderr = run("config", "providers", "update", "openai", "--secret-stdin", "--no-probe", "--yes",
                          stdin="sk-new-key-never-used-0123\n")
    assert code == 1
    assert message in stderr and "providers.json is unchanged" in stderr and "Traceback" not in stderr
    assert (cfg / "providers.json").read_bytes() == before
    load_providers(cfg / "providers.json")
    # The key file is put back too: the config still names it, so it must hold the old key.
    assert (cfg / "secrets" / "openai.key").read_text() == OPENAI_KEY
    assert sorted(cfg.glob("*.bak")) == backups_before and _leftovers(cfg) == []
    assert [e["event"] for e in audit_lines(audit_file)] == ["provider_added"]


def test_an_unwritable_config_folder_is_an_io_error(run: Run, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(cfg)) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args, **kwargs)

    cfg.mkdir()
    monkeypatch.setattr(os, "open", refuse)
    code, _, err = _add_lm(run, "lm")
    assert code == 1 and "not writable" in err and "nothing was written" in err
    assert list(cfg.iterdir()) == []


def test_rollback_lists_newest_first_and_restores_with_its_own_backup(run: Run, cfg: Path,
                                                                       audit_file: Path) -> None:
    for name in ("a", "b", "c"):
        assert _add_lm(run, name)[0] == 0
    code, out, _ = run("config", "rollback", "--list", "--json")
    rows = orjson.loads(out)
    assert code == 0 and [r["content"] for r in rows] == ["2 providers: a, b", "1 provider: a"]
    code, out, err = run("config", "rollback", "--yes")
    assert code == 0, err
    assert "- providers.c.kind" in out
    assert list(providers(cfg)["providers"]) == ["a", "b"]
    # Rolling back made a backup of what it replaced, so it can be undone the same way.
    assert orjson.loads(run("config", "rollback", "--list", "--json")[1])[0]["content"] == "3 providers: a, b, c"
    assert run("config", "rollback", "--yes")[0] == 0
    assert list(providers(cfg)["providers"]) == ["a", "b", "c"]
    events = audit_lines(audit_file)
    assert events[-1]["event"] == "config_rolled_back" and events[-1]["restored_from"].endswith(".bak")


def test_rollback_to_a_named_backup(run: Run, cfg: Path) -> None:
    for name in ("a", "b", "c"):
        assert _add_lm(run, name)[0] == 0
    oldest = orjson.loads(run("config", "rollback", "--list", "--json")[1])[-1]["name"]
    code, _, err = run("config", "rollback", "--to", oldest, "--yes")
    assert code == 0, err
    assert list(providers(cfg)["providers"]) == ["a"]
    code, _, err = run("config", "rollback", "--to", "providers.json.nope.bak", "--yes")
    assert code == 2 and "no backup named" in err


def test_an_invalid_backup_is_not_restored(run: Run, cfg: Path) -> None:
    assert _add_lm(run, "a")[0] == 0
    assert _add_lm(run, "b")[0] == 0
    [backup] = cfg.glob("providers.json.*.bak")
    backup.write_text('{"providers": {"a": {"kind": "lmstudio", "base_url": "http://h", "apikey": "x"}}}')
    before = (cfg / "providers.json").read_bytes()
    code, _, err = run("config", "rollback", "--yes")
    assert code == 2
    assert "providers.a.apikey: unknown key" in err and "unchanged" in err
    assert (cfg / "providers.json").read_bytes() == before


def test_rollback_repairs_a_broken_file(run: Run, cfg: Path) -> None:
    assert _add_lm(run, "a")[0] == 0
    assert _add_lm(run, "b")[0] == 0
    (cfg / "providers.json").write_text("{ not json")
    code, _, err = _add_lm(run, "c")
    assert code == 2 and "not valid JSON" in err
    code, _, err = run("config", "rollback", "--yes")
    assert code == 0, err
    assert list(providers(cfg)["providers"]) == ["a"]


def test_rollback_of_the_client_registry(run: Run, cfg: Path, audit_file: Path) -> None:
    assert run("clients", "add", "one")[0] == 0
    assert run("clients", "add", "two")[0] == 0
    assert run("clients", "disable", "one")[0] == 0
    rows = orjson.loads(run("config", "rollback", "--list", "--file", "clients", "--json")[1])
    assert [r["content"] for r in rows] == ["2 clients", "1 client"]
    code, _, err = run("config", "rollback", "--to", rows[-1]["name"], "--yes")  # --file inferred from the name
    assert code == 0, err
    registry = orjson.loads((cfg / "client-registry.json").read_bytes())
    assert list(registry["clients"]) == ["one"] and not registry["clients"]["one"]["disabled"]
    assert [e["event"] for e in audit_lines(audit_file)] == [
        "client_added", "client_added", "client_disabled", "config_rolled_back"]


def test_nothing_to_roll_back(run: Run, cfg: Path) -> None:
    code, _, err = run("config", "rollback", "--yes")
    assert code == 2 and "no backups" in err
    code, out, _ = run("config", "rollback", "--list")
    assert code == 0 and "no backups" in out


def test_same_second_backups_sort_by_their_counter(cfg: Path) -> None:
    from cli.assistant.rollback import backups
    from cli.assistant.store import target_for
    from shared.settings import Settings

    cfg.mkdir()
    suffixes = ("20260101T000000Z", "20260101T000000Z-1", "20260101T000000Z-2", "20251231T235959Z")
    for age, suffix in enumerate(suffixes):  # distinct mtimes in writing order: a sort by time would fail
        backup = cfg / f"providers.json.{suffix}.bak"
        backup.write_text("{}")
        os.utime(backup, (1_700_000_000 + age, 1_700_000_000 + age))
    (cfg / "other.json.20270101T000000Z.bak").write_text("{}")
    target = target_for(Settings.from_env({"LLMC_CONFIG_DIR": str(cfg)}), "providers")
    assert [b.name.split(".")[2] for b in backups(target)] == [
        "20260101T000000Z-2", "20260101T000000Z-1", "20260101T000000Z", "20251231T235959Z"]


def test_a_save_never_overwrites_a_change_made_since_it_was_prepared(cfg: Path, audit_file: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # The menu reads the file, the operator takes a minute to confirm, and meanwhile
    # `llm-caller clients add` saved: writing the menu's version would drop that client.
    monkeypatch.setenv("LLMC_CONFIG_DIR", str(cfg))
    settings = Settings.from_env()
    target = target_for(settings, "clients")
    cfg.mkdir()
    bot, new = {"token_sha256": "a" * 64}, {"token_sha256": "b" * 64}
    target.path.write_bytes(orjson.dumps({"clients": {"bot": bot}}))
    change = Change(target, read_current(target), {"clients": {}}, event="test_change")  # remove bot
    theirs = orjson.dumps({"clients": {"bot": bot, "new": new}}).decode()
    target.path.write_text(theirs)
    with pytest.raises(CommandRefused, match="changed since this change was prepared"):
        save(change, CliUi(assume_yes=True), settings)
    assert target.path.read_text() == theirs
    assert not files.dated_backups(target.path)

"""`llm-caller clients ...` run in-process against a temporary config folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.stack import REPO_ROOT
from shared.config import load_client_registry
from shared.tokens import TOKEN_PREFIX, token_matches
from tests.unit.cli_runner import run_cli

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LLMC_CONFIG_DIR", raising=False)
    return tmp_path / "config"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], config_dir: Path) -> Run:
    def invoke(*argv: str, config: bool = True) -> tuple[int, str, str]:
        return run_cli(capsys, [*argv, "--config-dir", str(config_dir)] if config else argv)

    return invoke


def _registry(config_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((config_dir / "client-registry.json").read_bytes())
    return data


def _add(run: Run, name: str, *options: str) -> str:
    code, out, err = run("clients", "add", name, "--print-token", *options)
    assert code == 0, err
    return out.strip()


def test_add_print_token_prints_only_the_token_and_stores_only_its_hash(run: Run, config_dir: Path) -> None:
    code, out, err = run("clients", "add", "claude-desktop", "--print-token")
    assert code == 0, err
    token = out.removesuffix("\n")
    assert "\n" not in token and token.startswith(TOKEN_PREFIX)
    text = (config_dir / "client-registry.json").read_text()
    assert token not in text
    entry = _registry(config_dir)["clients"]["claude-desktop"]
    assert token_matches(token, entry["token_sha256"])
    assert entry["tools"] == ["*"] and entry["providers"] == ["*"]
    assert entry["disabled"] is False and entry["expires_at"] is None
    assert abs(entry["created_at"] - time.time()) < 60
    load_client_registry(config_dir / "client-registry.json")  # what the gateway will read


def test_add_for_humans_shows_token_once_with_a_warning(run: Run, config_dir: Path) -> None:
    code, out, _ = run("clients", "add", "cursor")
    assert code == 0
    tokens = [word for word in out.split() if word.startswith(TOKEN_PREFIX)]
    assert len(tokens) == 1
    assert "will not be shown again" in out
    assert token_matches(tokens[0], _registry(config_dir)["clients"]["cursor"]["token_sha256"])


def test_add_with_grants_and_expiry(run: Run, config_dir: Path) -> None:
    _add(run, "bot", "--tools", "chat,embed", "--providers", "openai,anthropic", "--expires-in", "12h",
         "--allow-unconfigured")
    entry = _registry(config_dir)["clients"]["bot"]
    assert entry["tools"] == ["chat", "embed"]
    assert entry["providers"] == ["openai", "anthropic"]
    assert abs(entry["expires_at"] - (time.time() + 12 * 3600)) < 60


@pytest.mark.parametrize(("flag", "value"), [("--tools", "chat,complete"), ("--expires-in", "3w"),
                                             ("--expires-in", "0d"), ("--providers", "Open AI")])
def test_add_rejects_bad_options_before_writing(run: Run, config_dir: Path, flag: str, value: str) -> None:
    code, _, err = run("clients", "add", "bot", flag, value)
    assert code == 2 and flag in err
    assert not (config_dir / "client-registry.json").exists()


def test_add_creates_the_registry_and_folder(run: Run, config_dir: Path) -> None:
    assert not config_dir.exists()
    _add(run, "first")
    registry = config_dir / "client-registry.json"
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    assert list(_registry(config_dir)["clients"]) == ["first"]


def test_duplicate_add_fails_and_leaves_the_file_byte_identical(run: Run, config_dir: Path) -> None:
    _add(run, "bot")
    before = (config_dir / "client-registry.json").read_bytes()
    backups = sorted(config_dir.glob("*.bak"))
    code, out, err = run("clients", "add", "bot", "--print-token")
    assert code == 2 and out == ""
    assert "already exists" in err and "clients rotate bot" in err
    assert (config_dir / "client-registry.json").read_bytes() == before
    assert sorted(config_dir.glob("*.bak")) == backups


@pytest.mark.parametrize("name", ["Bot", "1bot", "bot name", "b" * 33, "bot\n"])
def test_invalid_name_is_refused(run: Run, config_dir: Path, name: str) -> None:
    code, out, err = run("clients", "add", name)
    assert code == 2 and out == ""
    assert "invalid client name" in err and "lowercase" in err
    assert not (config_dir / "client-registry.json").exists()


def test_each_change_keeps_a_backup_of_the_previous_file(run: Run, config_dir: Path) -> None:
    _add(run, "one")
    before = (config_dir / "client-registry.json").read_bytes()
    _add(run, "two")
    assert before in [backup.read_bytes() for backup in config_dir.glob("client-registry.json.*.bak")]


def test_list_table_and_json_never_show_hashes(run: Run, config_dir: Path) -> None:
    _add(run, "alpha", "--tools", "chat")
    _add(run, "beta", "--expires-in", "30d")
    run("clients", "disable", "beta")
    hashes = [entry["token_sha256"] for entry in _registry(config_dir)["clients"].values()]

    code, table, _ = run("clients", "list")
    assert code == 0
    assert "alpha" in table and "beta" in table and "disabled" in table
    code, raw, _ = run("clients", "list", "--json")
    assert code == 0
    rows = orjson.loads(raw)
    assert [row["name"] for row in rows] == ["alpha", "beta"]
    assert set(rows[0]) == {"name", "tools", "providers", "limits", "disabled", "expires_at", "created_at"}
    assert rows[0]["tools"] == ["chat"] and rows[1]["disabled"] is True and rows[1]["expires_at"] > time.time()
    assert not any(h in table or h in raw for h in hashes)


def test_list_of_an_empty_registry(run: Run) -> None:
    _add(run, "only")
    run("clients", "remove", "only")
    code, out, _ = run("clients", "list")
    assert code == 0 and "no clients" in out
    assert orjson.loads(run("clients", "list", "--json")[1]) == []


def test_remove(run: Run, config_dir: Path) -> None:
    token = _add(run, "gone")
    _add(run, "kept")
    code, out, _ = run("clients", "remove", "gone")
    assert code == 0 and "removed" in out
    clients = _registry(config_dir)["clients"]
    assert list(clients) == ["kept"]
    assert not any(token_matches(token, entry["token_sha256"]) for entry in clients.values())


def test_unknown_client_is_refused_without_writing(run: Run, config_dir: Path) -> None:
    _add(run, "known")
    before = (config_dir / "client-registry.json").read_bytes()
    for action in ("remove", "disable", "enable", "rotate"):
        code, _, err = run("clients", action, "ghost")
        assert code == 2 and "no client named 'ghost'" in err and "known" in err
    assert (config_dir / "client-registry.json").read_bytes() == before


def test_disable_and_enable(run: Run, config_dir: Path) -> None:
    _add(run, "bot")
    assert run("clients", "disable", "bot")[0] == 0
    assert _registry(config_dir)["clients"]["bot"]["disabled"] is True
    code, out, _ = run("clients", "disable", "bot")
    assert code == 0 and "already disabled" in out
    assert run("clients", "enable", "bot")[0] == 0
    assert _registry(config_dir)["clients"]["bot"]["disabled"] is False


def test_rotate_replaces_the_token_and_keeps_the_grants(run: Run, config_dir: Path) -> None:
    old = _add(run, "bot", "--tools", "chat")
    before = _registry(config_dir)["clients"]["bot"]
    code, out, _ = run("clients", "rotate", "bot", "--print-token")
    assert code == 0
    new = out.strip()
    after = _registry(config_dir)["clients"]["bot"]
    assert new != old and new.startswith(TOKEN_PREFIX)
    assert token_matches(new, after["token_sha256"])
    assert not token_matches(old, after["token_sha256"])
    assert {k: v for k, v in after.items() if k != "token_sha256"} == {
        k: v for k, v in before.items() if k != "token_sha256"
    }
    assert new not in (config_dir / "client-registry.json").read_text()


def test_rotate_can_renew_the_expiry(run: Run, config_dir: Path) -> None:
    _add(run, "bot", "--expires-in", "1m")
    run("clients", "rotate", "bot", "--expires-in", "90m")
    assert abs(_registry(config_dir)["clients"]["bot"]["expires_at"] - (time.time() + 90 * 60)) < 60


def test_broken_registry_is_reported_and_left_alone(run: Run, config_dir: Path) -> None:
    config_dir.mkdir()
    registry = config_dir / "client-registry.json"
    registry.write_text('{"clients": {"bot": {"token_sha256": "nothex"}}}')
    before = registry.read_bytes()
    for argv in (("clients", "add", "new"), ("clients", "list"), ("clients", "remove", "bot")):
        code, out, err = run(*argv)
        assert code == 2 and out == ""
        assert str(registry) in err and "clients.bot.token_sha256" in err and "fix:" in err
    assert registry.read_bytes() == before
    # No backup and no temporary file; only the (empty) lock file the commands share.
    assert sorted(config_dir.iterdir()) == [config_dir / ".client-registry.json.lock", registry]


def test_missing_registry_is_reported_for_list(run: Run, config_dir: Path) -> None:
    code, _, err = run("clients", "list")
    assert code == 2 and "file not found" in err


def test_existing_mode_and_schema_hint_are_kept(run: Run, config_dir: Path) -> None:
    (config_dir / "schema").mkdir(parents=True)
    (config_dir / "schema" / "client-registry.schema.json").write_text("{}")
    registry = config_dir / "client-registry.json"
    registry.write_text('{"clients": {}}')
    registry.chmod(0o640)
    _add(run, "bot")
    assert stat.S_IMODE(registry.stat().st_mode) == 0o640
    assert _registry(config_dir)["$schema"] == "./schema/client-registry.schema.json"


def test_config_dir_defaults_to_the_environment(run: Run, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMC_CONFIG_DIR", str(config_dir))
    code, _, err = run("clients", "add", "bot", config=False)
    assert code == 0, err
    assert "bot" in _registry(config_dir)["clients"]


def test_write_failure_is_one_clean_line(run: Run, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from shared import files

    _add(run, "bot")
    before = (config_dir / "client-registry.json").read_bytes()

    def full(*_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    code, out, err = run("clients", "add", "other")
    assert code == 1 and out == ""
    assert "disk is full" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (config_dir / "client-registry.json").read_bytes() == before


def test_concurrent_adds_all_land(config_dir: Path) -> None:
    # Separate processes, started together: without the registry lock each would read the
    # same old file and the last save would drop the others' clients.
    script = "import sys; from cli.main import main; sys.exit(main(sys.argv[1:]))"
    names = [f"bot{n}" for n in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", script, "clients", "add", name, "--print-token",
                               "--config-dir", str(config_dir)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for name in names]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(names), errors
    assert sorted(load_client_registry(config_dir / "client-registry.json").clients) == names


def test_add_refuses_a_provider_that_is_not_configured_and_lists_the_configured_ones(
        run: Run, config_dir: Path) -> None:
    assert run("init", "--config-dir", str(config_dir), config=False)[0] == 0
    code, _, err = run("clients", "add", "bot", "--providers", "openia")
    assert code != 0
    assert "not configured in" in err and "openia" in err
    assert "configured providers: anthropic, lmstudio, openai" in err
    assert "bot" not in _registry(config_dir)["clients"]
    _add(run, "bot", "--providers", "openai,anthropic")
    _add(run, "later", "--providers", "gemini", "--allow-unconfigured")
    assert _registry(config_dir)["clients"]["later"]["providers"] == ["gemini"]


def test_add_in_an_empty_folder_leaves_a_complete_valid_folder(run: Run, config_dir: Path) -> None:
    _add(run, "first", "--providers", "openai")
    assert {"client-registry.json", "providers.json", "schema"} <= {p.name for p in config_dir.iterdir()}
    code, out, err = run("config", "check")
    assert code == 0, err
    assert "1 client" in out


# ---- per-client limits ----------------------------------------------------------------


def _audit_events() -> list[dict[str, Any]]:
    audit = Path(os.environ["LLMC_LOG_DIR"]) / "audit.jsonl"
    return [orjson.loads(line) for line in audit.read_text().splitlines()]


def test_add_with_limits_and_list_shows_them(run: Run, config_dir: Path) -> None:
    code, out, err = run("clients", "add", "ci-bot", "--requests-per-min", "60", "--max-concurrency", "4")
    assert code == 0, err
    assert "limits: 60/min, 4 at once" in out
    assert _registry(config_dir)["clients"]["ci-bot"]["limits"] == {"requests_per_min": 60, "max_concurrency": 4}
    _add(run, "editor")
    code, table, _ = run("clients", "list")
    header, *rows = table.splitlines()
    assert "LIMITS" in header.split()
    assert "60/min, 4 at once" in next(r for r in rows if r.startswith("ci-bot"))
    assert "none" in next(r for r in rows if r.startswith("editor")).split()
    code, raw, _ = run("clients", "list", "--json")
    limits = {row["name"]: row["limits"] for row in orjson.loads(raw)}
    assert limits == {"ci-bot": {"requests_per_min": 60, "max_concurrency": 4},
                      "editor": {"requests_per_min": None, "max_concurrency": None}}
    added = [e for e in _audit_events() if e["event"] == "client_added" and e["client"] == "ci-bot"]
    assert added[0]["limits"] == {"requests_per_min": 60, "max_concurrency": 4}
    print(out, table, raw, sep="\n")  # after the last run: capsys would take it for the command's output


def test_update_sets_changes_and_removes_limits_and_keeps_the_token(run: Run, config_dir: Path) -> None:
    token = _add(run, "bot")
    code, out, err = run("clients", "update", "bot", "--requests-per-min", "30")
    assert code == 0, err
    assert "limits: 30/min (was: none)" in out
    run("clients", "update", "bot", "--max-concurrency", "2")
    assert _registry(config_dir)["clients"]["bot"]["limits"] == {"requests_per_min": 30, "max_concurrency": 2}
    code, out, _ = run("clients", "update", "bot", "--requests-per-min", "off")
    assert code == 0 and "limits: 2 at once (was: 30/min, 2 at once)" in out
    entry = _registry(config_dir)["clients"]["bot"]
    assert entry["limits"] == {"requests_per_min": None, "max_concurrency": 2}
    assert token_matches(token, entry["token_sha256"])
    load_client_registry(config_dir / "client-registry.json")
    updates = [e for e in _audit_events() if e["event"] == "client_updated"]
    assert [u["limits"] for u in updates] == [{"requests_per_min": 30, "max_concurrency": None},
                                              {"requests_per_min": 30, "max_concurrency": 2},
                                              {"requests_per_min": None, "max_concurrency": 2}]
    assert len(list(config_dir.glob("client-registry.json.*.bak"))) >= 3
    print(out)


def test_update_with_the_same_limits_writes_nothing(run: Run, config_dir: Path) -> None:
    _add(run, "bot", "--max-concurrency", "3")
    before = (config_dir / "client-registry.json").read_bytes()
    code, out, _ = run("clients", "update", "bot", "--max-concurrency", "3")
    assert code == 0 and "already has these limits (3 at once)" in out
    assert (config_dir / "client-registry.json").read_bytes() == before


@pytest.mark.parametrize(("argv", "message"), [
    (("update", "bot"), "nothing to change"),
    (("update", "ghost", "--max-concurrency", "2"), "no client named 'ghost'"),
    (("update", "bot", "--max-concurrency", "0"), "--max-concurrency"),
    (("update", "bot", "--max-concurrency", "1025"), "at most 1024"),
    (("update", "bot", "--requests-per-min", "-5"), "--requests-per-min"),
    (("update", "bot", "--requests-per-min", "lots"), "or off for no limit"),
    (("add", "bot2", "--requests-per-min", "1.5"), "whole number"),
])
def test_bad_limits_are_refused_without_writing(run: Run, config_dir: Path, argv: tuple[str, ...],
                                                message: str) -> None:
    _add(run, "bot")
    before = (config_dir / "client-registry.json").read_bytes()
    code, _, err = run("clients", *argv)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert (config_dir / "client-registry.json").read_bytes() == before

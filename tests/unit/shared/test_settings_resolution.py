"""Where settings come from: option > LLMC_* variable > the running stack's record > XDG default (#14.3, #14.9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import build_parser
from cli.options import resolve_settings
from cli.stdio_cmd import gateway_environment
from shared.settings import RECORD_NAME, Settings, default_run_dir


def _home(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing but a home folder: every setting takes its default."""
    return {"HOME": str(tmp_path / "home")}


def _record(run_dir: Path, **fields: object) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RECORD_NAME
    path.write_text(json.dumps(fields))
    path.chmod(0o600)


def test_defaults_are_xdg_folders_outside_the_checkout(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.resolve({}, _home(tmp_path))
    assert settings.config_dir == home / ".config" / "llm-caller"
    assert settings.run_dir == home / ".local" / "state" / "llm-caller" / "run"
    assert settings.log_dir == home / ".local" / "state" / "llm-caller" / "logs"
    assert settings.port == 8765


def test_xdg_variables_move_the_defaults(tmp_path: Path) -> None:
    env = {**_home(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s")}
    settings = Settings.resolve({}, env)
    assert (settings.config_dir, settings.run_dir, settings.log_dir) == (
        tmp_path / "c" / "llm-caller", tmp_path / "s" / "llm-caller" / "run", tmp_path / "s" / "llm-caller" / "logs")


def test_relative_xdg_values_are_ignored_as_the_spec_says(tmp_path: Path) -> None:
    settings = Settings.resolve({}, {**_home(tmp_path), "XDG_CONFIG_HOME": "relative/cfg"})
    assert settings.config_dir == tmp_path / "home" / ".config" / "llm-caller"


def test_the_run_folder_does_not_depend_on_xdg_runtime_dir(tmp_path: Path) -> None:
    """Commands started by an MCP client or cron often lack XDG_RUNTIME_DIR; they must find the same stack."""
    with_runtime = {**_home(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "r")}
    assert default_run_dir(with_runtime) == default_run_dir(_home(tmp_path))


def test_option_beats_environment_beats_record_beats_default(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _record(run_dir, port=18710, config_dir=str(tmp_path / "rec-config"), log_dir=str(tmp_path / "rec-logs"),
            host="127.0.0.1")
    base = {**_home(tmp_path), "LLMC_RUN_DIR": str(run_dir)}
    from_record = Settings.resolve({}, base)
    assert (from_record.port, from_record.config_dir, from_record.log_dir) == (
        18710, tmp_path / "rec-config", tmp_path / "rec-logs")
    from_env = Settings.resolve({}, {**base, "LLMC_PORT": "18711", "LLMC_CONFIG_DIR": str(tmp_path / "env")})
    assert (from_env.port, from_env.config_dir, from_env.log_dir) == (18711, tmp_path / "env", tmp_path / "rec-logs")
    from_option = Settings.resolve({"LLMC_PORT": 18712, "LLMC_CONFIG_DIR": tmp_path / "opt"},
                                   {**base, "LLMC_PORT": "18711"})
    assert (from_option.port, from_option.config_dir) == (18712, tmp_path / "opt")


def test_the_run_folder_option_beats_the_variable_and_its_record_is_read(tmp_path: Path) -> None:
    _record(tmp_path / "named", port=18720)
    _record(tmp_path / "from-env", port=18721)
    env = {**_home(tmp_path), "LLMC_RUN_DIR": str(tmp_path / "from-env")}
    settings = Settings.resolve({"LLMC_RUN_DIR": tmp_path / "named"}, env)
    assert (settings.run_dir, settings.port, settings.log_dir) == (
        tmp_path / "named", 18720, tmp_path / "named" / "logs")


def test_up_starts_fresh_and_ignores_an_old_record(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _record(run_dir, port=18730, config_dir=str(tmp_path / "old"))
    settings = Settings.resolve({"LLMC_RUN_DIR": run_dir}, _home(tmp_path), remembered=False)
    assert (settings.port, settings.config_dir) == (8765, tmp_path / "home" / ".config" / "llm-caller")


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"port": "x"}'])
def test_a_broken_record_never_breaks_a_command(tmp_path: Path, content: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RECORD_NAME).write_text(content)
    (run_dir / RECORD_NAME).chmod(0o600)
    assert Settings.resolve({"LLMC_RUN_DIR": run_dir}, _home(tmp_path)).port == 8765


def test_a_record_others_could_have_written_is_ignored(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _record(run_dir, port=18740)
    (run_dir / RECORD_NAME).chmod(0o644)
    assert Settings.resolve({"LLMC_RUN_DIR": run_dir}, _home(tmp_path)).port == 8765


def test_every_stack_command_reads_the_record_through_the_same_resolution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    _record(run_dir, port=18750, config_dir=str(tmp_path / "cfg"))
    monkeypatch.setenv("LLMC_RUN_DIR", str(run_dir))
    monkeypatch.delenv("LLMC_LOG_DIR")
    parser = build_parser()
    for argv in (["status"], ["down"], ["restart", "gateway"], ["stdio"],
                 ["token", "issue", "--client", "a", "--ttl", "5m"], ["clients", "list"], ["config", "check"]):
        settings = resolve_settings(parser.parse_args(argv))
        assert (settings.port, settings.config_dir) == (18750, tmp_path / "cfg"), argv
    assert resolve_settings(parser.parse_args(["up"]), remembered=False).port == 8765


def test_stdio_connects_to_the_recorded_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record(tmp_path / "run", port=18760)
    monkeypatch.setenv("LLMC_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("LLMC_GATEWAY_URL", raising=False)
    monkeypatch.delenv("LLMC_PORT", raising=False)
    args = build_parser().parse_args(["stdio"])
    assert gateway_environment(args)["LLMC_GATEWAY_URL"] == "http://127.0.0.1:18760"
    monkeypatch.setenv("LLMC_GATEWAY_URL", "http://127.0.0.1:9999")
    assert gateway_environment(args)["LLMC_GATEWAY_URL"] == "http://127.0.0.1:9999"


def test_a_bad_port_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    monkeypatch.setenv("LLMC_PORT", "eighty")
    assert main(["status"]) == 2
    assert capsys.readouterr().err.strip() == "llm-caller: LLMC_PORT='eighty' is not a port number"

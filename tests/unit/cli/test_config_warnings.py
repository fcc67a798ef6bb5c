"""Configuration that loads but cannot work: `config check` and `up` warn, `--strict` makes it fatal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.cli_runner import edit_providers, run_cli

Run = Callable[..., tuple[int, str, str]]
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    for name in ("LLMC_CONFIG_DIR", "LLMC_RUN_DIR", "LLMC_LOG_DIR", "LLMC_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name in KEY_VARS:
        monkeypatch.setenv(name, f"sk-test-{name.lower()}")

    def invoke(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, argv)

    return invoke


def _set(provider: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["providers"][provider][key] = value

    return change


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("llm-caller: warning:")]


def _check(run: Run, folder: Path, *extra: str) -> tuple[int, list[str], str]:
    code, out, err = run("config", "check", "--config-dir", str(folder), *extra)
    return code, _warnings(err), out


def test_a_complete_config_has_no_warnings(run: Run, config_dir: Path) -> None:
    code, warnings, out = _check(run, config_dir, "--strict")
    assert (code, warnings) == (0, []) and out.startswith("config OK")


@pytest.mark.parametrize(("provider", "url", "fix"), [
    ("lmstudio", "http://localhost:1234/v1", "fix: use http://localhost:1234"),
    ("lmstudio", "http://localhost:1234/api/v0", "fix: use http://localhost:1234"),
    ("anthropic", "https://api.anthropic.com/v1", "fix: use https://api.anthropic.com"),
    ("openai", "https://api.openai.com", "fix: use https://api.openai.com/v1"),
    ("openai", "https://api.openai.com/v1/chat/completions", "e.g. https://api.openai.com/v1"),
    ("openai", "http://llm.example.internal/v1", "fix: use https://"),
])
def test_a_base_url_the_worker_would_miss_is_one_warning_line(
        run: Run, config_dir: Path, provider: str, url: str, fix: str) -> None:
    edit_providers(config_dir, _set(provider, "base_url", url))
    code, warnings, _ = _check(run, config_dir)
    assert code == 0
    assert len(warnings) == 1, warnings
    assert f"providers.{provider}.base_url: " in warnings[0] and fix in warnings[0]
    code, warnings, out = _check(run, config_dir, "--strict")
    assert code == 1 and len(warnings) == 1 and out == ""


def test_an_unset_key_variable_names_the_provider_the_variable_and_the_fix(
        run: Run, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, warnings, _ = _check(run, config_dir)
    assert code == 0
    assert len(warnings) == 1, warnings
    line = warnings[0]
    assert "providers.openai.secret: $OPENAI_API_KEY is not set" in line
    assert "defaults.chat, defaults.chatStream, defaults.embed route there" in line
    assert line.endswith("fix: export OPENAI_API_KEY=<key> before `llm-caller up`")
    assert "sk-test" not in line
    assert _check(run, config_dir, "--strict")[0] == 1


@pytest.mark.parametrize(("mode", "expected"), [
    (None, "does not exist; fix: write the key there"),
    (0o644, "is open to others (mode 0644), so the anthropic worker refuses it; fix: chmod 600"),
    (0o600, None),
])
def test_key_file_problems(run: Run, config_dir: Path, tmp_path: Path, mode: int | None, expected: str | None) -> None:
    key = tmp_path / "anthropic.key"
    if mode is not None:
        key.write_text("sk-ant-test\n")
        key.chmod(mode)
    edit_providers(config_dir, _set("anthropic", "secret", {"file": str(key)}))
    code, warnings, _ = _check(run, config_dir)
    assert code == 0
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and f"providers.anthropic.secret.file: {key} {expected}" in warnings[0]


def test_an_empty_key_file_and_a_relative_path_warn(run: Run, config_dir: Path, tmp_path: Path) -> None:
    key = tmp_path / "empty.key"
    key.touch(mode=0o600)
    edit_providers(config_dir, _set("anthropic", "secret", {"file": str(key)}))
    assert "is empty; fix: write the key into it" in _check(run, config_dir)[1][0]
    edit_providers(config_dir, _set("anthropic", "secret", {"file": "keys/anthropic"}))
    assert "is relative" in _check(run, config_dir)[1][0]


def test_lmstudio_with_nothing_to_serve_warns(run: Run, config_dir: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["providers"]["lmstudio"]["discover_models"] = False
        data["fallbacks"] = {}
        data["aliases"] = {}

    edit_providers(config_dir, change)
    warnings = _check(run, config_dir)[1]
    assert len(warnings) == 1 and "providers.lmstudio.models: none listed and discover_models is false" in warnings[0]


def test_up_warns_and_strict_refuses_before_starting_anything(
        run: Run, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    run_dir = tmp_path / "run"
    code, _, err = run("up", "--detach", "--strict", "--config-dir", str(config_dir), "--run-dir", str(run_dir))
    assert code == 1
    warnings = _warnings(err)
    assert len(warnings) == 1 and "providers.anthropic.secret: $ANTHROPIC_API_KEY is not set" in warnings[0]
    assert "not started: 1 warning(s) and --strict" in err
    assert not run_dir.exists()  # refused before the run folder, the keys or supervisord

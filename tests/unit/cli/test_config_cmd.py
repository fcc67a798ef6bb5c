"""`llm-caller config check | schema` and `llm-caller init`, run in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.config_cmd import STARTER_PROVIDERS, STARTER_REGISTRY
from shared.config import load_client_registry, load_providers
from tests.unit.cli_runner import edit_providers, run_cli

REPO_CONFIG = Path(__file__).resolve().parents[3] / "config"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.delenv("LLMC_CONFIG_DIR", raising=False)
    def invoke(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, argv)

    return invoke


# ---- init -----------------------------------------------------------------------------


def test_starter_matches_the_repo_config() -> None:
    committed = orjson.loads((REPO_CONFIG / "providers.json").read_bytes())
    committed.pop("$schema")
    assert committed == STARTER_PROVIDERS


def test_init_writes_loadable_starter_files(config_dir: Path) -> None:
    providers = orjson.loads((config_dir / "providers.json").read_bytes())
    assert providers.pop("$schema") == "./schema/providers.schema.json"
    assert providers == STARTER_PROVIDERS
    assert load_client_registry(config_dir / "client-registry.json").clients == {}
    assert load_providers(config_dir / "providers.json").defaults["chat"].provider == "openai"
    for name in ("providers.schema.json", "client-registry.schema.json"):
        assert (config_dir / "schema" / name).read_bytes() == (REPO_CONFIG / "schema" / name).read_bytes()


def test_init_fills_in_missing_files_and_keeps_existing_ones(run: Run, config_dir: Path) -> None:
    registry = config_dir / "client-registry.json"
    registry.write_text('{"clients": {"bot": {"token_sha256": "' + "ab" * 32 + '"}}}')
    (config_dir / "providers.json").unlink()
    before = registry.read_bytes()
    code, out, err = run("init", "--config-dir", str(config_dir))
    assert code == 0, err
    assert f"wrote {config_dir / 'providers.json'}" in out
    assert f"kept {registry} as it is (pass --force" in out
    assert registry.read_bytes() == before
    assert load_providers(config_dir / "providers.json").defaults["chat"].provider == "openai"
    assert not list(config_dir.glob("*.bak"))


def test_init_force_overwrites_and_keeps_backups(run: Run, config_dir: Path) -> None:
    registry = config_dir / "client-registry.json"
    registry.write_text('{"clients": {"bot": {"token_sha256": "' + "ab" * 32 + '"}}}')
    before = registry.read_bytes()
    code, _, err = run("init", "--config-dir", str(config_dir), "--force")
    assert code == 0, err
    assert load_client_registry(registry).clients == {}
    assert before in [b.read_bytes() for b in config_dir.glob("client-registry.json.*.bak")]
    assert STARTER_REGISTRY == {"clients": {}}


# ---- config check ---------------------------------------------------------------------


def test_check_ok(run: Run, config_dir: Path) -> None:
    run("clients", "add", "bot", "--print-token", "--config-dir", str(config_dir))
    code, out, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 0, err
    assert out.strip() == "config OK: 3 providers (openai, anthropic, lmstudio), 1 client"


def test_check_the_committed_config(run: Run) -> None:
    code, out, err = run("config", "check", "--config-dir", str(REPO_CONFIG))
    assert code == 0, err
    assert out.startswith("config OK: 3 providers")


def test_check_reports_every_broken_file(run: Run, tmp_path: Path) -> None:
    (tmp_path / "providers.json").write_text("{not json")
    code, out, err = run("config", "check", "--config-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert str(tmp_path / "providers.json") in err and "not valid JSON" in err
    assert str(tmp_path / "client-registry.json") in err and "file not found" in err


def test_check_default_model_must_be_listed(run: Run, config_dir: Path) -> None:
    edit_providers(config_dir, lambda d: d["defaults"]["chat"].update(model="gpt-9"))
    code, _, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 2
    assert str(config_dir / "providers.json") in err
    assert "defaults.chat.model: 'gpt-9' is not listed" in err and "fix:" in err


def test_check_default_model_needs_the_capability(run: Run, config_dir: Path) -> None:
    edit_providers(config_dir, lambda d: d["defaults"]["embed"].update(model="gpt-4o"))
    code, _, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 2 and "defaults.embed.model" in err


def test_check_default_on_a_provider_that_cannot_do_it(run: Run, config_dir: Path) -> None:
    edit_providers(config_dir, lambda d: d["defaults"].update(embed={"provider": "anthropic"}))
    code, _, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 2 and "defaults.embed.provider" in err and "cannot do embed" in err


def test_check_only_warns_for_discovered_lmstudio_models(run: Run, config_dir: Path) -> None:
    edit_providers(config_dir, lambda d: d["defaults"]["chat"].update(provider="lmstudio", model="qwen"))
    code, out, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 0 and out.startswith("config OK")
    assert "warning" in err and "defaults.chat.model" in err


def test_check_fails_for_lmstudio_without_discovery(run: Run, config_dir: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["defaults"]["chat"] = {"provider": "lmstudio", "model": "qwen"}
        data["providers"]["lmstudio"]["discover_models"] = False

    edit_providers(config_dir, change)
    code, _, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 2 and "defaults.chat.model" in err


def test_check_model_errors_come_through(run: Run, config_dir: Path) -> None:
    edit_providers(config_dir, lambda d: d["providers"]["openai"].update(api_key="sk-secret-value"))
    code, _, err = run("config", "check", "--config-dir", str(config_dir))
    assert code == 2 and "providers.openai.api_key" in err and "sk-secret-value" not in err


# ---- config schema --------------------------------------------------------------------


def test_committed_schemas_have_not_drifted(run: Run) -> None:
    code, out, err = run("config", "schema", "--check")
    assert code == 0, err
    assert "up to date" in out


def test_schema_writes_and_detects_drift(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "schema"
    assert run("config", "schema", "--check", "--out", str(out_dir))[0] == 1  # missing counts as drift
    code, _, err = run("config", "schema", "--out", str(out_dir))
    assert code == 0, err
    for name in ("providers.schema.json", "client-registry.schema.json"):
        written = (out_dir / name).read_bytes()
        assert written == (REPO_CONFIG / "schema" / name).read_bytes()
        assert written.endswith(b"}\n")
    assert run("config", "schema", "--check", "--out", str(out_dir))[0] == 0

    (out_dir / "providers.schema.json").write_text("{}\n")
    code, _, err = run("config", "schema", "--check", "--out", str(out_dir))
    assert code == 1 and "providers.schema.json" in err and "client-registry" not in err

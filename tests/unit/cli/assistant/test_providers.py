"""`llm-caller config providers ...` in-process, probing the emulators."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from cli.assistant.probe import probe
from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from shared.config import load_providers
from tests.unit.cli.assistant.conftest import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    Run,
    add_openai,
    audit_lines,
    closed_port,
    providers,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_add_openai_stores_a_key_file_reference_and_audits(run: Run, emu: BackgroundEmulators, cfg: Path,
                                                           audit_file: Path) -> None:
    code, out, err = add_openai(run, emu, "openai", "--default", "chat=gpt-4o-mini")
    assert code == 0, err
    assert "check passed" in out and "+ providers.openai.secret: [secret] (file)" in out
    entry = providers(cfg)["providers"]["openai"]
    key_file = cfg / "secrets" / "openai.key"
    assert entry["secret"] == {"file": str(key_file)}
    assert key_file.read_text() == OPENAI_KEY
    assert _mode(key_file) == 0o600 and _mode(key_file.parent) == 0o700
    assert (key_file.parent / ".gitignore").read_text().strip().endswith("*")
    assert providers(cfg)["defaults"]["chat"] == {"provider": "openai", "model": "gpt-4o-mini"}
    load_providers(cfg / "providers.json")  # what the gateway would load
    [event] = audit_lines(audit_file)
    assert event["event"] == "provider_added" and event["provider"] == "openai" and event["actor"]
    assert _mode(audit_file) == 0o600
    assert OPENAI_KEY not in out + err + (cfg / "providers.json").read_text() + audit_file.read_text()


def test_adding_a_provider_in_an_empty_folder_leaves_a_complete_valid_folder(
        run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, out, err = add_openai(run, emu, "openai", "--default", "chat=gpt-4o-mini")
    assert code == 0, err
    assert f"also wrote {cfg / 'client-registry.json'}" in out
    assert list(providers(cfg)["providers"]) == ["openai"]  # the starter never replaces what was just saved
    assert (cfg / "schema" / "providers.schema.json").is_file()
    code, out, err = run("config", "check")
    assert code == 0, err
    assert "config OK: 1 provider (openai), 0 clients" in out
    code, out, err = run("init")
    assert code == 0 and "wrote" not in out and out.count("kept ") == 2


def test_a_rejected_key_saves_nothing(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, out, err = add_openai(run, emu, key="sk-wrong-key-0123456789")
    assert code == 2
    assert "rejected the key (HTTP 401)" in err and "nothing was saved" in err and "--no-probe" in err
    assert not (cfg / "providers.json").exists() and not (cfg / "secrets" / "openai.key").exists()
    assert "sk-wrong-key-0123456789" not in out + err


def test_no_probe_saves_without_asking_the_provider(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, out, _ = add_openai(run, emu, "openai", "--no-probe", key="sk-not-checked-0123456789")
    assert code == 0 and "check" not in out
    assert (cfg / "secrets" / "openai.key").read_text() == "sk-not-checked-0123456789"


def test_an_unreachable_host_is_one_clear_line_and_the_old_file_stays(run: Run, emu: BackgroundEmulators,
                                                                      cfg: Path) -> None:
    assert add_openai(run, emu)[0] == 0
    before = (cfg / "providers.json").read_bytes()
    code, _, err = run("config", "providers", "add", "local", "--kind", "lmstudio",
                       "--base-url", f"http://127.0.0.1:{closed_port()}", "--model", "m1", "--probe", "--yes")
    assert code == 2
    assert "cannot reach 127.0.0.1:" in err and "Traceback" not in err
    assert (cfg / "providers.json").read_bytes() == before


@pytest.mark.parametrize(("argv", "message"), [
    (("add", "x", "--no-probe", "--kind", "lmstudio", "--base-url", "localhost:1234"), "invalid base URL"),
    (("add", "x", "--no-probe", "--kind", "lmstudio", "--base-url", "ftp://h"), "invalid base URL"),
    (("add", "Bad Name", "--no-probe", "--kind", "lmstudio", "--base-url", "http://h"), "invalid provider name"),
    (("add", "x", "--no-probe", "--kind", "openai", "--base-url", "http://h"), "needs a key"),
    (("add", "x", "--no-probe", "--kind", "anthropic", "--base-url", "http://h", "--secret-env", "K",
      "--model", "c:embed"), "cannot do embed"),
    (("add", "x", "--no-probe", "--kind", "lmstudio", "--base-url", "http://h", "--priority", "5000"),
     "providers.x.priority: Input should be less than or equal to 1000"),
    (("update", "ghost", "--no-probe", "--priority", "1"), "no provider named 'ghost'"),
    (("remove", "ghost"), "no provider named 'ghost'"),
    (("add", "x", "--no-probe", "--kind", "openai", "--base-url", "http://h", "--secret-env", "lower-case"),
     "invalid variable name"),
])
def test_bad_input_exits_2_and_writes_nothing(run: Run, cfg: Path, argv: tuple[str, ...], message: str) -> None:
    code, _, err = run("config", "providers", *argv, "--yes")
    assert code == 2
    assert message in err
    assert not cfg.exists() or not (cfg / "providers.json").exists()


def test_a_duplicate_name_is_refused(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    assert add_openai(run, emu)[0] == 0
    before = (cfg / "providers.json").read_bytes()
    code, _, err = add_openai(run, emu)
    assert code == 2 and "already exists" in err and "providers update openai" in err
    assert (cfg / "providers.json").read_bytes() == before


def test_a_default_to_an_unlisted_model_is_a_schema_style_refusal(run: Run, emu: BackgroundEmulators,
                                                                  cfg: Path) -> None:
    assert add_openai(run, emu)[0] == 0
    before = (cfg / "providers.json").read_bytes()
    code, _, err = run("config", "providers", "update", "openai", "--default", "embed=gpt-4o-mini", "--yes")
    assert code == 2
    assert "would make" in err and "defaults.embed.model" in err and "unchanged" in err
    assert (cfg / "providers.json").read_bytes() == before


def test_secret_env_reference_and_probe_with_the_variable(run: Run, emu: BackgroundEmulators, cfg: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    base = ("config", "providers", "add", "anthropic", "--kind", "anthropic", "--base-url", emu.url("anthropic"),
            "--model", "claude-sonnet-4-6", "--secret-env", "TEST_ANTHROPIC_KEY", "--yes")
    monkeypatch.delenv("TEST_ANTHROPIC_KEY", raising=False)
    code, _, err = run(*base, "--probe")
    assert code == 2 and "$TEST_ANTHROPIC_KEY is not set" in err
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-wrong-0123456789")
    code, _, err = run(*base)
    assert code == 2 and "rejected the key (HTTP 401)" in err
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", ANTHROPIC_KEY)
    code, out, err = run(*base)
    assert code == 0, err
    assert "check passed" in out
    assert providers(cfg)["providers"]["anthropic"]["secret"] == {"env": "TEST_ANTHROPIC_KEY"}
    assert not (cfg / "secrets").exists()


def test_an_unset_variable_without_probe_flag_warns_and_saves(run: Run, emu: BackgroundEmulators, cfg: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    code, _, err = run("config", "providers", "add", "o", "--kind", "openai", "--base-url", emu.url("openai"),
                       "--secret-env", "UNSET_KEY_VAR", "--yes")
    assert code == 0 and "not checked: $UNSET_KEY_VAR is not set" in err


def test_update_changes_only_what_is_given_and_rotates_the_key(run: Run, emu: BackgroundEmulators, cfg: Path,
                                                               audit_file: Path) -> None:
    assert add_openai(run, emu)[0] == 0
    code, out, err = run("config", "providers", "update", "openai", "--model", "text-embedding-3-small",
                         "--default", "embed=text-embedding-3-small", "--priority", "5", "--no-probe",
                         "--secret-stdin", "--yes", stdin="sk-rotated-key-0123456789\n")
    assert code == 0, err
    assert "+ providers.openai.models[text-embedding-3-small].capabilities: [\"embed\"]" in out
    assert "+ providers.openai.priority: 5" in out
    entry = providers(cfg)["providers"]["openai"]
    assert [m["id"] for m in entry["models"]] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert (cfg / "secrets" / "openai.key").read_text() == "sk-rotated-key-0123456789"
    assert [e["event"] for e in audit_lines(audit_file)] == ["provider_added", "provider_updated"]
    code, _, err = run("config", "providers", "update", "openai", "--drop-model", "text-embedding-3-small",
                       "--no-probe", "--yes")
    assert code == 2 and "defaults.embed.model" in err  # the default still routes to the dropped model


def test_remove_drops_routes_and_keeps_the_key_file(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    assert add_openai(run, emu, "openai", "--default", "chat=gpt-4o-mini")[0] == 0
    code, out, err = run("config", "providers", "remove", "openai", "--yes")
    assert code == 0, err
    assert "routes to 'openai' go too: defaults.chat" in out and "was kept" in out
    assert {k: v for k, v in providers(cfg).items() if k != "$schema"} == {"providers": {}, "defaults": {}}
    assert (cfg / "secrets" / "openai.key").exists()


def test_list_json_and_table(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, out, _ = run("config", "providers", "list")
    assert code == 0 and "no providers" in out
    assert add_openai(run, emu, "openai", "--default", "chat=gpt-4o-mini")[0] == 0
    code, out, _ = run("config", "providers", "list", "--json")
    [row] = orjson.loads(out)
    assert row["name"] == "openai" and row["defaults"] == ["chat"] and row["key"].endswith("(present)")
    assert row["models"] == [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]}]
    code, out, _ = run("config", "providers", "list")
    assert "openai" in out.splitlines()[1] and OPENAI_KEY not in out


def test_without_yes_off_a_terminal_nothing_is_saved(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, out, err = run("config", "providers", "add", "lm", "--kind", "lmstudio", "--base-url", emu.url("lmstudio"),
                         "--no-probe")
    assert code == 2 and "pass --yes" in err
    assert "+ providers.lm.kind" in out  # the change was still shown
    assert not (cfg / "providers.json").exists()


def test_config_alone_off_a_terminal_explains_itself(run: Run) -> None:
    code, _, err = run("config")
    assert code == 2 and "needs" in err and "providers" in err


def test_config_dir_before_the_action_is_honoured(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    from cli.main import main

    assert add_openai(run, emu)[0] == 0
    assert main(["config", "--config-dir", str(cfg), "providers", "list", "--json"]) == 0


def test_probe_reads_a_key_refused_with_a_400_as_a_rejected_key(emu: BackgroundEmulators) -> None:
    # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID (here quoting the key).
    with EmulatorControl(emu.url("gemini")) as control:
        control.reset()
        control.add_faults({"mode": "echo_key_in_error", "status": 400})
        result = probe("gemini", emu.url("gemini") + "/v1beta", "AIzaProbeKey0123456789abcdef")
        control.reset()
    assert not result.ok
    assert "rejected the key (HTTP 400)" in result.message and "AIzaProbeKey" not in result.message

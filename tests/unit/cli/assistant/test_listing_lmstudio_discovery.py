"""LM Studio discovery through `config providers add|update --discover`, against the emulator."""

from __future__ import annotations

from pathlib import Path

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from tests.unit.cli.assistant.conftest import Run, closed_port, providers


def _models(cfg: Path, name: str = "lm") -> dict[str, list[str]]:
    return {m["id"]: m["capabilities"] for m in providers(cfg)["providers"][name]["models"]}


def _add(run: Run, emu: BackgroundEmulators, *extra: str) -> tuple[int, str, str]:
    return run("config", "providers", "add", "lm", "--kind", "lmstudio", "--base-url", emu.url("lmstudio"),
               "--discover", "--yes", *extra)


def test_discover_adds_the_loaded_models_with_capabilities_from_their_type(
        run: Run, emu: BackgroundEmulators, lmstudio: EmulatorControl, cfg: Path) -> None:
    code, out, err = _add(run, emu, "--default", "embed=nomic-embed-text-v1.5")
    assert code == 0, err
    assert "discovered:" in out
    # llama-3.2-3b-instruct is downloaded but not loaded, so it is not offered.
    assert _models(cfg) == {"qwen2.5-7b-instruct": ["chat", "chatStream"], "nomic-embed-text-v1.5": ["embed"]}
    assert providers(cfg)["defaults"]["embed"] == {"provider": "lm", "model": "nomic-embed-text-v1.5"}
    assert lmstudio.stats()["by_path"].get("/api/v0/models") == 1
    assert "/v1/chat/completions" not in lmstudio.stats()["by_path"]  # discovery never costs a completion


def test_update_discover_follows_models_appearing_and_disappearing(
        run: Run, emu: BackgroundEmulators, lmstudio: EmulatorControl, cfg: Path) -> None:
    assert _add(run, emu)[0] == 0
    lmstudio.set_models([
        {"id": "qwen2.5-7b-instruct"},
        {"id": "mistral-7b-instruct", "type": "vlm"},
        {"id": "bge-small", "type": "embeddings"},
    ])
    code, out, err = run("config", "providers", "update", "lm", "--discover", "--yes")
    assert code == 0, err
    assert "+ providers.lm.models[mistral-7b-instruct].capabilities" in out
    assert "+ providers.lm.models[bge-small].capabilities" in out
    assert "- providers.lm.models[nomic-embed-text-v1.5].capabilities" in out
    assert _models(cfg) == {"qwen2.5-7b-instruct": ["chat", "chatStream"],
                            "mistral-7b-instruct": ["chat", "chatStream"], "bge-small": ["embed"]}


def test_nothing_loaded_warns_and_still_saves(run: Run, emu: BackgroundEmulators, lmstudio: EmulatorControl,
                                              cfg: Path) -> None:
    lmstudio.set_models([{"id": "qwen2.5-7b-instruct", "state": "not-loaded"}])
    code, _, err = _add(run, emu)
    assert code == 0
    assert "no model is loaded" in err
    assert _models(cfg) == {}


def test_an_older_server_falls_back_to_v1_models(run: Run, emu: BackgroundEmulators, lmstudio: EmulatorControl,
                                                 cfg: Path) -> None:
    lmstudio.add_faults({"mode": "status", "status": 404, "path": "/api/v0/models"})
    code, _, err = _add(run, emu)
    assert code == 0, err
    # No types in /v1/models: the id decides, and only loaded models are listed there.
    assert _models(cfg) == {"qwen2.5-7b-instruct": ["chat", "chatStream"], "nomic-embed-text-v1.5": ["embed"]}
    assert lmstudio.stats()["by_path"].get("/v1/models") == 1


def test_discovery_from_an_unreachable_host_saves_nothing(run: Run, cfg: Path) -> None:
    code, _, err = run("config", "providers", "add", "lm", "--kind", "lmstudio",
                       "--base-url", f"http://127.0.0.1:{closed_port()}", "--discover", "--yes")
    assert code == 2
    assert "cannot discover models: cannot reach 127.0.0.1:" in err
    assert not (cfg / "providers.json").exists()


def test_discover_is_for_lmstudio_only(run: Run, emu: BackgroundEmulators, cfg: Path) -> None:
    code, _, err = run("config", "providers", "add", "o", "--kind", "openai", "--base-url", emu.url("openai"),
                       "--secret-env", "X", "--discover", "--yes")
    assert code == 2 and "--discover" in err

"""Which providers a sandbox runs: the starter stack by default, every emulated kind on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.config_folder import STARTER_PROVIDERS
from emulators.registry import EMULATORS
from harness.sandbox import EmulatorProcess, emulator_providers
from shared.config import ProvidersFile
from workers.providers.registry import KINDS


def _running(tmp_path: Path) -> EmulatorProcess:
    emulators = EmulatorProcess(tmp_path, {})
    emulators.ports = {kind: 40000 + i for i, kind in enumerate(EMULATORS)}
    return emulators


def test_every_kind_has_an_emulator() -> None:
    assert set(EMULATORS) == set(KINDS)


def test_default_is_the_starter_stack(tmp_path: Path) -> None:
    config = emulator_providers(_running(tmp_path))
    assert list(config["providers"]) == list(STARTER_PROVIDERS["providers"])
    ProvidersFile.model_validate(config)


def test_all_covers_every_kind_with_urls_filled_in(tmp_path: Path) -> None:
    emulators = _running(tmp_path)
    config = emulator_providers(emulators, "all")
    assert {p["kind"] for p in config["providers"].values()} == set(EMULATORS)
    for provider in config["providers"].values():
        assert provider["base_url"].startswith(emulators.url(provider["kind"]))
    ProvidersFile.model_validate(config)


def test_a_subset_drops_routes_to_providers_left_out(tmp_path: Path) -> None:
    first = next(iter(STARTER_PROVIDERS["providers"]))
    config = emulator_providers(_running(tmp_path), (first,))
    assert list(config["providers"]) == [first]
    targets = [*config["defaults"].values(), *config["aliases"].values(),
               *(t for ts in config["fallbacks"].values() for t in ts)]
    assert all(t["provider"] == first for t in targets)
    ProvidersFile.model_validate(config)


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no provider nosuch"):
        emulator_providers(_running(tmp_path), ("nosuch",))

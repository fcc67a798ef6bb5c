"""Unit tests never write into the repository or the user's home: run, log and XDG folders point at temp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir: Path = tmp_path_factory.mktemp("run")
    monkeypatch.setenv("LLMC_RUN_DIR", str(run_dir))
    monkeypatch.setenv("LLMC_LOG_DIR", str(run_dir / "logs"))
    home: Path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)

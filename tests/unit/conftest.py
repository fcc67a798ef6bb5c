"""Unit tests never write into the repository: run and log folders point at a temp dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir: Path = tmp_path_factory.mktemp("run")
    monkeypatch.setenv("LLMC_RUN_DIR", str(run_dir))
    monkeypatch.setenv("LLMC_LOG_DIR", str(run_dir / "logs"))

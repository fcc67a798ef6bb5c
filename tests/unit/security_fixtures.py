"""Fixtures for the security building blocks: a fake installation to sign and an in-process CLI.

Shared test helpers (not a conftest): tests/unit/shared/conftest.py and tests/unit/cli/conftest.py
import the fixtures their tests use (the manifest in shared/, the key and token commands in cli/).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.cli_runner import run_cli
from tests.unit.security_fakes import TREE, Run, write_keypair


@pytest.fixture
def install(tmp_path: Path) -> Path:
    root = tmp_path / "install"
    for name, text in TREE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def make_keypair() -> Callable[..., tuple[Path, Path]]:
    return write_keypair


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    return write_keypair(tmp_path / "keys")


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `llm-caller ARGS...` in-process: (exit code, stdout, stderr)."""
    monkeypatch.delenv("LLMC_CONFIG_DIR", raising=False)
    def invoke(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, argv)

    return invoke

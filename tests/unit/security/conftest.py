"""Fixtures for the security building blocks: a fake installation to sign and an in-process CLI."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.security.fakes import TREE, Run, write_keypair


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


def _ensure_stack_cmd(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main imports cli.stack_cmd; stand in for it only when it cannot be imported here."""
    try:
        importlib.import_module("cli.stack_cmd")
    except ImportError:
        stub = types.ModuleType("cli.stack_cmd")
        stub.register = lambda sub: None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "cli.stack_cmd", stub)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `llm-caller ARGS...` in-process: (exit code, stdout, stderr)."""
    monkeypatch.delenv("LLMC_CONFIG_DIR", raising=False)
    _ensure_stack_cmd(monkeypatch)
    from cli.main import main

    def invoke(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse rejects bad arguments this way
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke

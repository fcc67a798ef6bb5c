"""Shared fixtures: emulators in-process, a temporary config folder, and an in-process CLI runner.

The emulators are started once per module run and reset before each test that uses them,
so a fault or a model list set by one test never leaks into the next.
"""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from emulators.control import EmulatorControl
from emulators.lmstudio_api import DEFAULT_MODELS
from emulators.server import BackgroundEmulators, EmulatorConfig

OPENAI_KEY = "sk-assistant-openai-test-key-0123456789"
ANTHROPIC_KEY = "sk-ant-assistant-test-key-0123456789"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="session")
def emu() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(keys={"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY})) as running:
        yield running


@pytest.fixture
def lmstudio(emu: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(emu.url("lmstudio")) as control:
        control.reset()
        control.set_models([m.model_dump() for m in DEFAULT_MODELS])
        yield control
        control.reset()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMC_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "logs" / "audit.jsonl"


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cfg: Path, audit_file: Path) -> Run:
    """``run(*argv, stdin=None)``: the CLI in-process with --config-dir appended; (code, stdout, stderr)."""
    monkeypatch.delenv("LLMC_CONFIG_DIR", raising=False)
    from cli.main import main

    def invoke(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        try:
            code = main([*argv, "--config-dir", str(cfg)])
        except SystemExit as exc:  # argparse refuses bad flags this way
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def providers(cfg: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((cfg / "providers.json").read_bytes())
    return data


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def add_openai(run: Run, emu: BackgroundEmulators, name: str = "openai", *extra: str,
               key: str = OPENAI_KEY) -> tuple[int, str, str]:
    return run("config", "providers", "add", name, "--kind", "openai", "--base-url", emu.url("openai") + "/v1",
               "--model", "gpt-4o-mini", "--secret-stdin", "--yes", *extra, stdin=key + "\n")

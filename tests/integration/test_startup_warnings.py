"""A real `llm-caller up` with a provider's key absent: `up` warns, and `status` says which worker and why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import free_port

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    # `python -m` from this checkout, so the code under test is this tree's.
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def folders() -> Iterator[tuple[Path, list[str]]]:
    root = Path(tempfile.mkdtemp(prefix="llmc-", dir="/tmp"))  # short: unix socket paths
    where = ["--config-dir", str(root / "config"), "--run-dir", str(root / "run"), "--port", str(free_port())]
    try:
        yield root, where
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_up_and_status_name_the_provider_without_a_key(folders: tuple[Path, list[str]]) -> None:
    root, where = folders
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_") and k != "OPENAI_API_KEY"}
    env["ANTHROPIC_API_KEY"] = "sk-ant-test-key"
    assert _cli(env, "init", "--config-dir", str(root / "config")).returncode == 0
    up = _cli(env, "up", "--detach", *where)
    try:
        assert up.returncode == 0, up.stderr
        warnings = [line for line in up.stderr.splitlines() if "warning:" in line]
        assert len(warnings) == 1, up.stderr
        assert "providers.openai.secret: $OPENAI_API_KEY is not set" in warnings[0]
        assert "fix: export OPENAI_API_KEY=<key>" in warnings[0]
        assert "sk-ant-test-key" not in up.stderr + up.stdout
        reason = _status_reason(env, where, "openai")
        assert "$OPENAI_API_KEY was not set when the stack started" in reason
        assert "fix: export OPENAI_API_KEY=<key>, then `llm-caller down` and `llm-caller up`" in reason
    finally:
        _cli(env, "down", *where)


def _status_reason(env: dict[str, str], where: list[str], provider: str, timeout_s: float = 60.0) -> str:
    """The status line explaining ``provider``, once its worker has registered with the gateway."""
    deadline = time.monotonic() + timeout_s
    shown = ""
    while time.monotonic() < deadline:
        shown = _cli(env, "status", *where).stdout
        for line in shown.splitlines():
            if line.startswith(f"{provider}: unconfigured: "):
                return line
        time.sleep(1)
    raise AssertionError(f"status never explained {provider}:\n{shown}")

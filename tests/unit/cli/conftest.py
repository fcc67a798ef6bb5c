"""Fixtures for tests of cli/: the in-process CLI, fake installation and keys the security commands use,
and a config folder freshly written by ``llm-caller init`` (through the test module's own ``run``)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.security_fixtures import install, keypair, run

__all__ = ["config_dir", "install", "keypair", "run"]


@pytest.fixture
def config_dir(tmp_path: Path, run: Callable[..., tuple[int, str, str]]) -> Path:
    """A folder freshly written by `llm-caller init`."""
    folder = tmp_path / "config"
    code, _, err = run("init", "--config-dir", str(folder))
    assert code == 0, err
    return folder

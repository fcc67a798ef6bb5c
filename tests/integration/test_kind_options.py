"""A kind's own settings through the real stack: ``options`` reach the provider, and an
older file's top-level key still works while `config check` says where it moved."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from cli.stack import REPO_ROOT
from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration


def _new_and_old_style(providers: dict[str, Any]) -> None:
    anthropic = providers["providers"]["anthropic"]
    providers["providers"]["anthropic-old"] = {**anthropic, "anthropic_version": "2023-01-01", "priority": 300}
    anthropic["options"] = {"api_version": "2024-10-22"}


@pytest.fixture(scope="module")
def kbox() -> Iterator[Sandbox]:
    with Sandbox(tweak=_new_and_old_style) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _version_sent(box: Sandbox, provider: str) -> str:
    """The anthropic-version header the emulator saw on a chat routed to ``provider``."""
    async def chat() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool("chat", {"prompt": "hi", "provider": provider})
        assert result.structured_content is not None, result.content
        return result.structured_content

    assert run(chat())["provider"] == provider
    with EmulatorControl(box.emulators.url("anthropic")) as control:
        return str(control.stats()["last_headers"]["anthropic-version"])


def test_options_and_the_old_top_level_key_both_reach_the_provider(kbox: Sandbox) -> None:
    assert _version_sent(kbox, "anthropic") == "2024-10-22"
    assert _version_sent(kbox, "anthropic-old") == "2023-01-01"


def test_config_check_says_where_the_old_key_moved(kbox: Sandbox) -> None:
    config_dir = kbox.stack.settings.config_dir
    check = subprocess.run([sys.executable, "-m", "cli.main", "config", "check", "--config-dir", str(config_dir)],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    moved = [line for line in check.stderr.splitlines() if "anthropic_version" in line]
    assert len(moved) == 1, check.stderr
    assert "providers.anthropic-old.anthropic_version: this setting moved to " \
           "providers.anthropic-old.options.api_version" in moved[0]

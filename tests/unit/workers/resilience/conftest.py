"""The emulators the resilience tests drive a real adapter against, and their fault control."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators, EmulatorConfig
from tests.unit.workers.resilience.emulated import KEY


@pytest.fixture(scope="module")
def emulators() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(keys={"openai": KEY, "anthropic": KEY})) as running:
        yield running


@pytest.fixture
def control(emulators: BackgroundEmulators) -> Iterator[EmulatorControl]:
    """The OpenAI emulator's control, reset before and after each test."""
    with EmulatorControl(emulators.url("openai")) as ctl:
        ctl.reset()
        yield ctl
        ctl.reset()

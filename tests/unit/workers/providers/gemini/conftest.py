"""The Gemini emulator the adapter tests talk to (one per test module) and its control API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators, EmulatorConfig

KEY = "AIzaUnitTestGeminiKey0123456789abcdefgh"


@pytest.fixture(scope="module")
def emulators() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(ports={"gemini": 0}, keys={"gemini": KEY})) as running:
        yield running


@pytest.fixture
def control(emulators: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulators.url("gemini")) as ctl:
        ctl.reset()
        yield ctl
        ctl.reset()

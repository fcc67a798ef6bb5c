"""One set of emulators for the whole test package, in-process on free ports.

Every test starts from a clean slate: no queued faults, zero counters, default LM Studio
models. Tests drive faults through the HTTP control API, exactly as other suites will.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.lmstudio_api import DEFAULT_MODELS
from emulators.server import PROVIDERS, BackgroundEmulators, EmulatorConfig

OPENAI_KEY = "sk-emulator-openai-test-key"
ANTHROPIC_KEY = "sk-ant-emulator-test-key"
GEMINI_KEY = "AIzaEmulatorGeminiTestKey0123456789abcd"
ANTHROPIC_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": f"Bearer {OPENAI_KEY}"}


@pytest.fixture(scope="session")
def emu() -> Iterator[BackgroundEmulators]:
    config = EmulatorConfig(keys={"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY, "gemini": GEMINI_KEY})
    with BackgroundEmulators(config) as running:
        yield running


@pytest.fixture(scope="session")
def controls(emu: BackgroundEmulators) -> Iterator[dict[str, EmulatorControl]]:
    handles = {p: EmulatorControl(emu.url(p)) for p in PROVIDERS}
    yield handles
    for handle in handles.values():
        handle.close()


@pytest.fixture(autouse=True)
def _clean_slate(request: pytest.FixtureRequest) -> None:
    if "controls" not in request.fixturenames and "emu" not in request.fixturenames:
        return  # a test that does not use the shared emulators
    controls: dict[str, EmulatorControl] = request.getfixturevalue("controls")
    for handle in controls.values():
        handle.reset()
    controls["lmstudio"].set_models([m.model_dump() for m in DEFAULT_MODELS])


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client

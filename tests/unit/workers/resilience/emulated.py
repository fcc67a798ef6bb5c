"""The provider config the resilience tests run a real adapter with, against the emulators."""

from __future__ import annotations

from typing import Any

from emulators.server import BackgroundEmulators
from shared.config import ProviderConfig

KEY = "sk-test-resilience-0123456789"


def config(emulators: BackgroundEmulators, **extra: Any) -> ProviderConfig:
    """An OpenAI provider on the emulator with a chat and an embedding model and fast retries."""
    return ProviderConfig.model_validate({
        "kind": "openai", "base_url": emulators.url("openai") + "/v1", "secret": {"env": "X"},
        "models": [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]},
                   {"id": "text-embedding-3-small", "capabilities": ["embed"]}],
        "retry": {"base_delay_s": 0.01, "max_delay_s": 0.05}, **extra})

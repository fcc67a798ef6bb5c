"""The registry of provider emulators: the one place that lists them, one line per kind.

Each emulator is named by the provider kind it imitates (``Emulator.provider``), so the
sandbox can start one for every kind in ``workers.providers.registry.KINDS``.
"""

from __future__ import annotations

from emulators.anthropic_api import AnthropicEmulator
from emulators.base import Emulator
from emulators.gemini_api import GeminiEmulator
from emulators.lmstudio_api import LMStudioEmulator
from emulators.openai_api import OpenAIEmulator

__all__ = ["EMULATORS", "build_emulator"]

EMULATORS: dict[str, type[Emulator]] = {cls.provider: cls for cls in (
    OpenAIEmulator,
    AnthropicEmulator,
    LMStudioEmulator,
    GeminiEmulator,
)}


def build_emulator(provider: str, key: str | None = None, *, chunk_delay_s: float = 0.0) -> Emulator:
    """A fresh emulator of ``provider``; ``key`` is the one API key it accepts (None: any key).

    ValueError for an unknown provider, or a key given to an emulator of a keyless server.
    """
    cls = EMULATORS.get(provider)
    if cls is None:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(EMULATORS)}")
    if key is not None and not cls.accepts_key:
        raise ValueError(f"the {provider} emulator takes no API key (its server runs without one)")
    return cls(chunk_delay_s=chunk_delay_s) if key is None else cls(key, chunk_delay_s=chunk_delay_s)

"""The registry of provider kinds: the one place that lists them. Adding a kind adds one line here.

Declarations only (``<kind>/kind.py``), so the gateway and ``shared.config`` may import it.
"""

from __future__ import annotations

from shared.kind_spec import KindSpec
from workers.providers.anthropic import kind as anthropic
from workers.providers.gemini import kind as gemini
from workers.providers.lmstudio import kind as lmstudio
from workers.providers.openai import kind as openai

__all__ = ["KINDS", "kind_spec"]

# In the order the assistant offers them.
KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (openai.KIND, anthropic.KIND, lmstudio.KIND,
                                                       gemini.KIND)}


def kind_spec(name: str) -> KindSpec:
    """The declaration of kind ``name`` (config validation admits only registered kinds)."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown provider kind {name!r}; known: {', '.join(KINDS)}") from None

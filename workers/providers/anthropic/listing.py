"""What a ``/v1/models`` card says a model can do (its ``capabilities`` object, where sent).

Every Claude model takes tools, and structured output always works (natively, or through a
forced tool call), so a card with capabilities lists ``tools`` and ``json_schema``;
``vision`` follows ``image_input`` and ``reasoning`` follows ``thinking.types.enabled`` or
``thinking.types.adaptive`` (the adapter sends whichever the model takes, by its id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.chat_parts import Feature
from workers.providers.http_base import as_int

__all__ = ["CardFacts", "card_facts"]


@dataclass(frozen=True, slots=True)
class CardFacts:
    features: list[Feature] | None  # None: the card has no capabilities object
    native_json: bool | None  # capabilities.structured_outputs.supported, where given
    context_length: int | None
    max_output_tokens: int | None


def _supported(node: Any, *path: str) -> bool | None:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    value = node.get("supported") if isinstance(node, dict) else None
    return value if isinstance(value, bool) else None


def card_facts(card: dict[str, Any]) -> CardFacts:
    caps = card.get("capabilities")
    features: list[Feature] | None = None
    native: bool | None = None
    if isinstance(caps, dict):
        features = ["json_schema", "tools"]
        if _supported(caps, "image_input"):
            features.insert(0, "vision")
        if _supported(caps, "thinking", "types", "enabled") or _supported(caps, "thinking", "types", "adaptive"):
            features.append("reasoning")
        native = _supported(caps, "structured_outputs")
    return CardFacts(features, native, as_int(card.get("max_input_tokens")), as_int(card.get("max_tokens")))

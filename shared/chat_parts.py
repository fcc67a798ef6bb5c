"""What a chat carries besides plain text: images, tools, structured output, reasoning.

The internal, provider-neutral shapes (issue #16), shared by the gateway, which builds them
from a client's validated input, and the workers, whose adapters map them to each
provider's wire format. Like ``shared.models`` these are plain slotted dataclasses with
``to_wire``/``from_wire`` for the link; a plain text chat carries none of them, so it costs
what it did before.

Features (``Feature``) are what a *model* can do beyond its tool capabilities: ``vision``
(images in), ``json_schema`` (structured output), ``tools`` (function calls) and
``reasoning`` (an effort or thinking budget). A kind declares which its API can carry
(``KindSpec.features``); a model's own list comes from config, discovery or, failing both,
its kind. The gateway refuses a call needing a feature its model lacks with
``unsupported`` before any paid request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FEATURES",
    "SAMPLING_PARAMS",
    "Feature",
    "ImagePart",
    "Part",
    "Reasoning",
    "ResponseFormat",
    "Sampling",
    "SamplingParam",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "parts_from_wire",
    "parts_to_wire",
]

Feature = Literal["vision", "json_schema", "tools", "reasoning"]
FEATURES: tuple[Feature, ...] = ("vision", "json_schema", "tools", "reasoning")

# Sampling parameters a call may set beyond max_tokens and temperature. A kind declares
# the ones its API accepts (``KindSpec.sampling``); the gateway refuses the others as
# ``unsupported`` naming the parameter, or drops them when the call says drop_unsupported.
SamplingParam = Literal["stop", "top_p", "seed", "presence_penalty", "frequency_penalty"]
SAMPLING_PARAMS: tuple[SamplingParam, ...] = ("stop", "top_p", "seed", "presence_penalty", "frequency_penalty")


@dataclass(slots=True)
class TextPart:
    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(slots=True)
class ImagePart:
    """An image, inline: base64 ``data`` (no ``data:`` prefix) of ``mime_type`` (image/png...)."""

    data: str
    mime_type: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "image", "data": self.data, "mime_type": self.mime_type}

    @property
    def data_url(self) -> str:
        """The image as a ``data:`` URL (OpenAI's image_url, LM Studio)."""
        return f"data:{self.mime_type};base64,{self.data}"


Part = TextPart | ImagePart


def parts_to_wire(parts: list[Part]) -> list[dict[str, Any]]:
    return [p.to_wire() for p in parts]


def parts_from_wire(data: list[dict[str, Any]]) -> list[Part]:
    return [ImagePart(p["data"], p["mime_type"]) if p["type"] == "image" else TextPart(p["text"]) for p in data]


@dataclass(slots=True)
class ToolSpec:
    """A function the model may call: ``parameters`` is a JSON Schema of its arguments (an object)."""

    name: str
    description: str | None
    parameters: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolSpec:
        return cls(data["name"], data.get("description"), data["parameters"])


@dataclass(slots=True)
class ToolChoice:
    """``auto`` (the model decides), ``none`` (no calls), ``required`` (at least one call),
    or ``tool`` (a call to the one named ``name``)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"mode": self.mode, "name": self.name}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolChoice:
        return cls(data["mode"], data.get("name"))


@dataclass(slots=True)
class ToolCall:
    """A call the model made: ``arguments`` already parsed from the provider's JSON.

    ``id`` is the provider's id where it gives one, else one the worker made up (Gemini
    and Ollama may omit it), so a follow-up ``tool`` message can always name the call.
    """

    id: str
    name: str
    arguments: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ToolCall:
        return cls(data["id"], data["name"], data["arguments"])


@dataclass(slots=True)
class ResponseFormat:
    """``json_schema``: the reply must be JSON matching ``schema`` (named ``name``; ``strict``
    asks the provider to enforce it where it can); ``json_object``: any JSON object."""

    type: Literal["json_schema", "json_object"]
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "schema": self.schema, "name": self.name, "strict": self.strict}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ResponseFormat:
        return cls(data["type"], data.get("schema"), data.get("name", "response"), bool(data.get("strict", True)))


@dataclass(slots=True)
class Reasoning:
    """How hard a reasoning model should think: an ``effort`` level, or an explicit
    ``budget_tokens`` (the gateway fills in whichever the call did not give, so an adapter
    always has both); ``include_thoughts`` asks for the thinking text back where the
    provider gives it."""

    effort: Literal["low", "medium", "high"]
    budget_tokens: int
    include_thoughts: bool = False
    # The caller gave ``budget_tokens`` (not filled in from the effort). Gateway-side only: the
    # gateway notes a budget it could not honour; workers never need it, so it is not on the wire.
    budget_given: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"effort": self.effort, "budget_tokens": self.budget_tokens, "include_thoughts": self.include_thoughts}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Reasoning:
        return cls(data["effort"], data["budget_tokens"], bool(data.get("include_thoughts", False)))


@dataclass(slots=True)
class Sampling:
    """The optional sampling parameters (``SAMPLING_PARAMS``); None: not set."""

    stop: list[str] | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def given(self) -> dict[str, Any]:
        """The parameters set, by name."""
        return {name: value for name in SAMPLING_PARAMS if (value := getattr(self, name)) is not None}

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> Sampling:
        return cls(**data) if data else cls()


"""The internal request and result shapes that cross the gateway↔worker link.

These are plain slotted dataclasses, not pydantic models: the gateway validates the
client's input once (see ``gateway.tool_inputs``), and everything after that is trusted
internal data. Re-validating it on every hop would cost time on the hot path for no
safety gain. ``to_wire``/``from_wire`` convert to and from the dicts orjson carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CAPABILITIES",
    "Capability",
    "CapabilitySource",
    "ChatRequest",
    "ChatResult",
    "EmbedRequest",
    "EmbedResult",
    "Message",
    "ModelInfo",
    "TextDelta",
    "Usage",
    "capabilities_by_name",
]

Capability = Literal["chat", "chatStream", "embed"]
CAPABILITIES: tuple[Capability, ...] = ("chat", "chatStream", "embed")

# Where a model's capabilities came from, most trusted first: the operator's providers.json,
# the server's own word (LM Studio's model type), what the provider kind can do at all
# (Anthropic: chat only), a one-time probe call, or, as the last resort, the model's name.
CapabilitySource = Literal["config", "server", "kind", "probe", "name"]


def capabilities_by_name(model_id: str) -> list[Capability]:
    """The last-resort guess when nothing better is known: an id containing "embed" is an
    embedding model, anything else chats. The one place this guess is made."""
    if "embed" in model_id.lower():
        return ["embed"]
    return ["chat", "chatStream"]

Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    role: Role
    content: str


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_wire(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> Usage:
        if not data:
            return cls()
        return cls(input_tokens=data.get("input_tokens"), output_tokens=data.get("output_tokens"))


@dataclass(slots=True)
class ChatRequest:
    """One chat call, already validated and routed to a concrete model."""

    model: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    # W3C trace context for the provider request (the gateway's hop as parent).
    traceparent: str | None = None

    def to_wire(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every message, on every call.
        return {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": self.stream,
            "traceparent": self.traceparent,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChatRequest:
        return cls(
            model=data["model"],
            messages=[Message(m["role"], m["content"]) for m in data["messages"]],
            max_tokens=data.get("max_tokens"),
            temperature=data.get("temperature"),
            stream=bool(data.get("stream", False)),
            traceparent=data.get("traceparent"),
        )


@dataclass(slots=True)
class EmbedRequest:
    model: str
    inputs: list[str]
    traceparent: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"model": self.model, "inputs": self.inputs, "traceparent": self.traceparent}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EmbedRequest:
        return cls(model=data["model"], inputs=list(data["inputs"]), traceparent=data.get("traceparent"))


@dataclass(slots=True)
class TextDelta:
    """One piece of streamed text, forwarded as soon as the provider sent it."""

    text: str


@dataclass(slots=True)
class ChatResult:
    text: str
    model: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)

    def to_wire(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_wire(),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChatResult:
        return cls(
            text=data["text"],
            model=data["model"],
            finish_reason=data.get("finish_reason"),
            usage=Usage.from_wire(data.get("usage")),
        )


@dataclass(slots=True)
class EmbedResult:
    vectors: list[list[float]]
    model: str
    usage: Usage = field(default_factory=Usage)

    def to_wire(self) -> dict[str, Any]:
        return {"vectors": self.vectors, "model": self.model, "usage": self.usage.to_wire()}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EmbedResult:
        return cls(vectors=data["vectors"], model=data["model"], usage=Usage.from_wire(data.get("usage")))


@dataclass(slots=True)
class ModelInfo:
    """A model a worker knows, from config or from the provider's own listing."""

    id: str
    capabilities: list[Capability]
    loaded: bool | None = None  # LM Studio reports whether a model is in memory
    kind: str | None = None  # LM Studio: "llm", "vlm" or "embeddings"
    context_length: int | None = None
    capability_source: CapabilitySource | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "capabilities": list(self.capabilities),
            "loaded": self.loaded,
            "kind": self.kind,
            "context_length": self.context_length,
            "capability_source": self.capability_source,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(
            id=data["id"],
            capabilities=list(data.get("capabilities", [])),
            loaded=data.get("loaded"),
            kind=data.get("kind"),
            context_length=data.get("context_length"),
            capability_source=data.get("capability_source"),
        )

"""The internal request and result shapes that cross the gateway↔worker link.

These are plain slotted dataclasses, not pydantic models: the gateway validates the
client's input once (see ``gateway.tool_inputs``), and everything after that is trusted
internal data. Re-validating it on every hop would cost time on the hot path for no
safety gain. ``to_wire``/``from_wire`` convert to and from the dicts orjson carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.chat_parts import (
    Feature,
    Part,
    Reasoning,
    ResponseFormat,
    Sampling,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
    parts_from_wire,
    parts_to_wire,
)

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

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class Message:
    """One message. ``content`` is plain text, or parts (text and images) for a user message.

    An assistant message may carry the ``tool_calls`` it made (its content may then be "");
    a ``tool`` message is one call's result: ``tool_call_id`` names the call and ``name``
    the function (the gateway fills it in from the call when the client leaves it out,
    since Gemini and Ollama match results by name).
    """

    role: Role
    content: str | list[Part]
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text: ``content`` itself, or its text parts joined by blank lines."""
        if isinstance(self.content, str):
            return self.content
        return "\n\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"role": self.role, "content": self.content if isinstance(self.content, str)
                                else parts_to_wire(self.content)}
        if self.tool_calls:
            wire["tool_calls"] = [c.to_wire() for c in self.tool_calls]
        if self.tool_call_id is not None:
            wire["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            wire["name"] = self.name
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Message:
        content = data["content"]
        calls = data.get("tool_calls")
        return cls(data["role"], content if isinstance(content, str) else parts_from_wire(content),
                   [ToolCall.from_wire(c) for c in calls] if calls else None,
                   data.get("tool_call_id"), data.get("name"))


@dataclass(slots=True)
class Usage:
    """Tokens used. ``input_tokens`` includes cached ones (``cached_input_tokens`` says how
    many), ``output_tokens`` includes reasoning ones (``reasoning_tokens``); None: not reported."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None

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
            "cached_input_tokens": self.cached_input_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any] | None) -> Usage:
        if not data:
            return cls()
        return cls(input_tokens=data.get("input_tokens"), output_tokens=data.get("output_tokens"),
                   cached_input_tokens=data.get("cached_input_tokens"), reasoning_tokens=data.get("reasoning_tokens"))


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
    # Beyond plain text (issue #16); the gateway sets these only for a model that has the
    # feature (``shared.chat_parts``), so an adapter may map them without checking again.
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    sampling: Sampling = field(default_factory=Sampling)

    def to_wire(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies every message, on every call. The
        # optional parts travel only when set, so a plain text chat costs what it did.
        wire: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} if _plain(m) else m.to_wire() for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": self.stream,
            "traceparent": self.traceparent,
        }
        if self.tools is not None:
            wire["tools"] = [t.to_wire() for t in self.tools]
        if self.tool_choice is not None:
            wire["tool_choice"] = self.tool_choice.to_wire()
        if self.response_format is not None:
            wire["response_format"] = self.response_format.to_wire()
        if self.reasoning is not None:
            wire["reasoning"] = self.reasoning.to_wire()
        if sampling := self.sampling.given():
            wire["sampling"] = sampling
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChatRequest:
        tools, choice, fmt, reasoning = (data.get(k) for k in ("tools", "tool_choice", "response_format", "reasoning"))
        return cls(
            model=data["model"],
            messages=[Message(m["role"], m["content"]) if len(m) == 2 and isinstance(m["content"], str)
                      else Message.from_wire(m) for m in data["messages"]],
            max_tokens=data.get("max_tokens"),
            temperature=data.get("temperature"),
            stream=bool(data.get("stream", False)),
            traceparent=data.get("traceparent"),
            tools=[ToolSpec.from_wire(t) for t in tools] if tools is not None else None,
            tool_choice=ToolChoice.from_wire(choice) if choice is not None else None,
            response_format=ResponseFormat.from_wire(fmt) if fmt is not None else None,
            reasoning=Reasoning.from_wire(reasoning) if reasoning is not None else None,
            sampling=Sampling.from_wire(data.get("sampling")),
        )


def _plain(message: Message) -> bool:
    """A message that is only a role and text (the common case, sent in its short form)."""
    return isinstance(message.content, str) and message.tool_calls is None and message.tool_call_id is None \
        and message.name is None


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
    """A finished chat. ``finish_reason`` is normalised across providers: ``stop``,
    ``length`` (max tokens), ``tool_calls`` (the model called tools: see ``tool_calls``),
    ``content_filter``, or the provider's own word where none of these fits.
    ``reasoning`` is the thinking text, only when the call asked for it and the provider
    gave it; streams aggregate tool-call and thinking deltas into this final result."""

    text: str
    model: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    tool_calls: list[ToolCall] | None = None
    reasoning: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_wire(),
        }
        if self.tool_calls is not None:
            wire["tool_calls"] = [c.to_wire() for c in self.tool_calls]
        if self.reasoning is not None:
            wire["reasoning"] = self.reasoning
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChatResult:
        calls = data.get("tool_calls")
        return cls(
            text=data["text"],
            model=data["model"],
            finish_reason=data.get("finish_reason"),
            usage=Usage.from_wire(data.get("usage")),
            tool_calls=[ToolCall.from_wire(c) for c in calls] if calls is not None else None,
            reasoning=data.get("reasoning"),
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
    # What the model can do beyond its capabilities (``shared.chat_parts.Feature``), where the
    # server said so (Ollama's /api/show, LM Studio's vlm type and capabilities, Gemini's
    # thinking flag); None: the server did not say (config, then the kind, decide).
    features: list[Feature] | None = None
    max_output_tokens: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "capabilities": list(self.capabilities),
            "loaded": self.loaded,
            "kind": self.kind,
            "context_length": self.context_length,
            "capability_source": self.capability_source,
            "features": self.features,
            "max_output_tokens": self.max_output_tokens,
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
            features=data.get("features"),
            max_output_tokens=data.get("max_output_tokens"),
        )

"""The MCP tools' input and output shapes. Their JSON Schemas are what ``tools/list`` shows.

Inputs are validated here, once, at the edge; everything downstream trusts them.
Limits are generous for real use and small enough that one call cannot exhaust memory.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.shared.inbound import X_MCP_HEADER_KEY, find_invalid_x_mcp_header, x_mcp_header_map
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from gateway.flat_schema import flatten
from workers.providers.registry import KINDS

# Total characters of text one call may carry. The HTTP body limit (4 MiB) stops larger
# bodies before parsing; this stops a body that parses but is still unreasonable.
MAX_INPUT_CHARS = 1_000_000
MAX_MESSAGES = 500
MAX_EMBED_INPUTS = 2048

_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Provider name from providers.json")]
_Model = Annotated[str, Field(min_length=1, max_length=200, description="Model id, or omit for the default")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageIn(_Input):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_INPUT_CHARS)]


class ChatInput(_Input):
    """Give either ``messages`` or ``prompt`` (with an optional ``system``)."""

    messages: Annotated[list[MessageIn] | None, Field(min_length=1, max_length=MAX_MESSAGES)] = None
    prompt: Annotated[str | None, Field(min_length=1, max_length=MAX_INPUT_CHARS)] = None
    system: Annotated[str | None, Field(max_length=MAX_INPUT_CHARS)] = None
    model: _Model | None = None
    provider: _Name | None = None
    max_tokens: Annotated[int | None, Field(ge=1, le=200_000)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    timeout_s: Annotated[float | None, Field(gt=0, le=3600, description="Overall deadline for this call")] = None

    @model_validator(mode="after")
    def _one_source(self) -> ChatInput:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError('give exactly one of "messages" or "prompt"')
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError('"messages" needs at least one message with role "user"')
        total = len(self.prompt or "") + len(self.system or "")
        total += sum(len(m.content) for m in self.messages or ())
        if total > MAX_INPUT_CHARS:
            raise ValueError(f"input too large: {total} characters, the limit is {MAX_INPUT_CHARS}")
        return self


class EmbedInput(_Input):
    input: Annotated[
        str | Annotated[list[Annotated[str, Field(max_length=MAX_INPUT_CHARS)]], Field(min_length=1)],
        Field(description="One text or a list of texts to embed"),
    ]
    model: _Model | None = None
    provider: _Name | None = None
    timeout_s: Annotated[float | None, Field(gt=0, le=3600)] = None

    @model_validator(mode="after")
    def _size(self) -> EmbedInput:
        texts = [self.input] if isinstance(self.input, str) else self.input
        if len(texts) > MAX_EMBED_INPUTS:
            raise ValueError(f"too many inputs: {len(texts)}, the limit is {MAX_EMBED_INPUTS}")
        if any(not t for t in texts):
            raise ValueError("inputs must not be empty strings")
        total = sum(len(t) for t in texts)
        if total > MAX_INPUT_CHARS:
            raise ValueError(f"input too large: {total} characters, the limit is {MAX_INPUT_CHARS}")
        return self

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


# The kinds whose servers list their own models, as their declarations say.
_DISCOVERING = ", ".join(spec.title for spec in KINDS.values() if spec.discovers_models) or "none registered"


class HealthInput(_Input):
    refresh_models: bool = Field(
        False, description=f"Ask workers that discover models ({_DISCOVERING}) to list them again now")


# ------------------------------------------------------------------ outputs


class UsageOut(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


class SkippedRouteOut(BaseModel):
    provider: str
    model: str
    reason: str = Field(description="Why this route was not used: worker down, circuit open, or its error type")


class RouteOut(BaseModel):
    provider: str
    model: str
    reason: str = Field(description="Why this provider and model were chosen")
    fallback_from: list[SkippedRouteOut] = Field(
        default_factory=list, description="Routes tried or skipped before this one, in order")


class ChatOutput(BaseModel):
    text: str
    model: str
    provider: str
    finish_reason: str | None
    usage: UsageOut
    latency_ms: float
    request_id: str
    route: RouteOut
    chunks: int | None = Field(None, description="chatStream only: text deltas the provider's stream delivered "
                               "(the pieces `text` was put together from), counted whether or not they were "
                               "sent as progress")
    notifications: int | None = Field(None, description="chatStream only: progress notifications sent to this "
                                      "caller, one per delta; 0 when the request carried no progressToken")


class EmbedOutput(BaseModel):
    vectors: list[list[float]]
    dimensions: int
    model: str
    provider: str
    usage: UsageOut
    latency_ms: float
    request_id: str
    route: RouteOut


class ModelOut(BaseModel):
    id: str
    capabilities: list[str]
    loaded: bool | None = None
    kind: str | None = None
    context_length: int | None = None
    capability_source: str | None = Field(
        None, description=f"where the capabilities came from: config, server (the model type a server that discovers "
        f"models reports: {_DISCOVERING}), "
        "kind (all the provider kind can do), probe (a one-time test call), or name (guessed from the id)")


class WorkerHealthOut(BaseModel):
    provider: str
    kind: str
    up: bool
    status: str = Field(description="ready, unconfigured, degraded, or unknown before first contact")
    reason: str | None = Field(None, description="why the worker is not ready: not configured, or its provider "
                               "unreachable (with the base URL and since when)")
    degraded_since: str | None = Field(None, description="degraded: since when (ISO 8601, UTC)")
    heartbeat_age_s: float | None
    capabilities: list[str]
    models: list[ModelOut]
    last_error: str | None
    inflight: int
    restarts_seen: int
    circuit: dict[str, Any] = Field(default_factory=dict, description="state (closed/open/half_open), failures, "
                                    "and models whose own circuit is not closed")
    counters: dict[str, int] = Field(default_factory=dict, description=(
        "attempts, retries, failed attempts, model listings, rate-limit waits...: totals since the gateway "
        "started, summed over the worker's restarts"))


class HealthOutput(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    uptime_s: float
    workers: list[WorkerHealthOut]


# ------------------------------------------------------------------ errors


class ToolErrorOut(BaseModel):
    type: str = Field(description="Error class from the taxonomy, e.g. rate_limited")
    message: str
    retryable: bool
    retry_after_s: float | None = None
    provider: str | None = None
    request_id: str | None = None
    partial_text: str | None = Field(None, description="stream_interrupted: the text already sent")


class ToolErrorEnvelope(BaseModel):
    """What ``structuredContent`` holds when ``isError`` is true."""

    error: ToolErrorOut


def output_schema(success: type[BaseModel]) -> dict[str, Any]:
    """A tool's declared output: its success shape or the error envelope.

    Clients that check ``structuredContent`` against ``outputSchema`` on errors too (the
    MCP Inspector does) then accept our structured errors instead of rejecting them.
    Flattened (``gateway.flat_schema``) because most clients check every result against it.
    """
    either: Any = success | ToolErrorEnvelope
    schema: dict[str, Any] = TypeAdapter(either).json_schema()
    schema["type"] = "object"  # MCP requires an object schema at the top
    return flatten(schema)


def param_header_schema(input_schema: dict[str, Any]) -> dict[str, Any]:
    """The part of ``input_schema`` the SDK's ``Mcp-Param-*`` header check reads, and no more.

    On every ``tools/call`` the SDK walks the tool's input schema (twice) looking for
    ``x-mcp-header`` annotations; that walk over our full schemas was ~10% of the
    gateway's CPU per call. Its verdict depends only on the annotated properties (their
    ``properties`` path, token and type) and on whether the annotations are valid, so a
    schema holding just those gets the same answers. An invalid declaration is left whole
    for the SDK to judge.
    """
    if find_invalid_x_mcp_header(input_schema) is not None:
        return input_schema
    skeleton: dict[str, Any] = {"type": "object"}
    for path, token in x_mcp_header_map(input_schema).items():
        node, source = skeleton, input_schema
        for key in path:
            source = source["properties"][key]
            node = node.setdefault("properties", {}).setdefault(key, {"type": "object"})
        node.clear()
        node.update({"type": source["type"], X_MCP_HEADER_KEY: token})
    return skeleton

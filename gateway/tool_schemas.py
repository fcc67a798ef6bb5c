"""The MCP tools' input and output shapes. Their JSON Schemas are what ``tools/list`` shows.

Inputs are validated here, once, at the edge; everything downstream trusts them.
Limits are generous for real use and small enough that one call cannot exhaust memory.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any, Literal

from mcp.shared.inbound import X_MCP_HEADER_KEY, find_invalid_x_mcp_header, x_mcp_header_map
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, WithJsonSchema, model_validator

from gateway.chat_inputs import (
    MAX_IMAGES,
    MAX_IMAGES_TOTAL_BYTES,
    MAX_STOP,
    MAX_TOOLS,
    ImagePartIn,
    NamedToolChoice,
    PartIn,
    ReasoningIn,
    ResponseFormatIn,
    TextPartIn,
    ToolCallIn,
    ToolIn,
)
from gateway.flat_schema import flatten
from shared.chat_parts import Feature
from shared.models import Capability
from workers.providers.registry import KINDS

# Total characters of text one call may carry. The HTTP body limit (4 MiB) stops larger
# bodies before parsing; this stops a body that parses but is still unreasonable.
MAX_INPUT_CHARS = 1_000_000
MAX_MESSAGES = 500
MAX_EMBED_INPUTS = 2048
MAX_PARTS = 100  # content parts in one message
# A thread's id as the gateway makes it (gateway.threads): "th_" and 32 hex digits.
THREAD_ID_PATTERN = r"^th_[0-9a-f]{32}$"

_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Provider name from providers.json")]
_Model = Annotated[str, Field(min_length=1, max_length=200, description="Model id, or omit for the default")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _content_tag(value: Any) -> str:
    return "text" if isinstance(value, str) else "parts"


class MessageIn(_Input):
    """A message: text, or parts (text and images) in a user message; an assistant message may
    carry its ``tool_calls``, a ``tool`` message answers one by ``tool_call_id``."""

    role: Literal["system", "user", "assistant", "tool"]
    content: Annotated[
        Annotated[Annotated[str, Field(max_length=MAX_INPUT_CHARS)], Tag("text")]
        | Annotated[Annotated[list[PartIn], Field(min_length=1, max_length=MAX_PARTS)], Tag("parts")],
        Discriminator(_content_tag),
        Field(description="Text, or a list of parts: text and (user messages) images"),
    ] = ""
    tool_calls: Annotated[list[ToolCallIn] | None, Field(min_length=1, max_length=MAX_TOOLS)] = None
    tool_call_id: Annotated[str | None, Field(min_length=1, max_length=200,
                                              description="role tool: the id of the call this answers")] = None
    name: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$", description=(
        "role tool: the function's name; filled in from the call when omitted"))] = None

    @property
    def chars(self) -> int:
        """Characters of text this message carries."""
        if isinstance(self.content, str):
            return len(self.content)
        return sum(len(p.text) for p in self.content if isinstance(p, TextPartIn))

    @property
    def plain(self) -> bool:
        """Only a role and text: what every chat was before issue #16."""
        return (type(self.content) is str and self.tool_calls is None and self.tool_call_id is None
                and self.name is None and self.role != "tool")


ToolChoiceIn = Literal["auto", "none", "required"] | NamedToolChoice
_Stop = Annotated[str, Field(min_length=1, max_length=200)]


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
    tools: Annotated[list[ToolIn] | None, Field(min_length=1, max_length=MAX_TOOLS, description=(
        "Functions the model may call; the result's tool_calls name them"))] = None
    tool_choice: ToolChoiceIn | None = Field(None, description=(
        'auto (default), none, required, or {"name": X}: a call to tool X'))
    response_format: ResponseFormatIn | None = Field(None, description=(
        '{"type": "json_schema", "schema": {...}} or {"type": "json_object"}: the reply is JSON'))
    reasoning: ReasoningIn | None = None
    stop: _Stop | Annotated[list[_Stop], Field(min_length=1, max_length=MAX_STOP)] | None = Field(
        None, description=f"Stop sequence(s), at most {MAX_STOP}")
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    seed: Annotated[int | None, Field(ge=0, le=2**31 - 1)] = None
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    drop_unsupported: bool = Field(False, description=(
        "Drop sampling parameters (and a temperature) the chosen provider or model does not take "
        "(the result lists them) instead of refusing the call"))
    thread: Literal["new"] | None = Field(None, description=(
        'Start a conversation thread: "new"; the result gives its thread_id, to pass on the next call'))
    thread_id: Annotated[str | None, Field(pattern=THREAD_ID_PATTERN, description=(
        "Continue this thread: the gateway sends its stored messages before the ones of this call"))] = None

    @model_validator(mode="after")
    def _one_source(self) -> ChatInput:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError('give exactly one of "messages" or "prompt"')
        if self.thread is not None and self.thread_id is not None:
            raise ValueError('give "thread": "new" to start a thread or "thread_id" to continue one, not both')
        total = len(self.prompt or "") + len(self.system or "")
        plain = (self.thread is None and self.thread_id is None
                 and self.tools is None and self.tool_choice is None and self.response_format is None
                 and self.reasoning is None and self.stop is None and self.top_p is None and self.seed is None
                 and self.presence_penalty is None and self.frequency_penalty is None)
        if self.messages is not None:
            user = False
            for m in self.messages:  # one pass: this runs on every call
                user = user or m.role == "user"
                if (type(m.content) is str and m.tool_calls is None and m.tool_call_id is None and m.name is None
                        and m.role != "tool"):
                    total += len(m.content)
                else:
                    plain = False
                    total += m.chars
            if not user and self.thread_id is None:  # a thread's turn may answer its tool calls only
                raise ValueError('"messages" needs at least one message with role "user"')
        if total > MAX_INPUT_CHARS:
            raise ValueError(f"input too large: {total} characters, the limit is {MAX_INPUT_CHARS}")
        # Filled in here, as cached_property itself would, so reading it later costs a dict lookup.
        self.__dict__["plain"] = plain
        if not plain:  # the rules of the parts beyond text, only for calls that have them
            check_beyond_text(self)
        return self

    @cached_property
    def plain(self) -> bool:
        """A plain text chat (no parts, tools, format, reasoning or sampling): built as before #16.
        Set by the validator; worked out here only for an instance built without validation."""
        return (self.thread is None and self.thread_id is None
                and self.tools is None and self.tool_choice is None and self.response_format is None
                and self.reasoning is None and self.stop is None and self.top_p is None and self.seed is None
                and self.presence_penalty is None and self.frequency_penalty is None
                and (self.messages is None or all(m.plain for m in self.messages)))


def check_beyond_text(args: ChatInput) -> None:
    """The rules across fields: what each role may carry, image limits, tool_choice among tools,
    tool results matching earlier calls."""
    for index, message in enumerate(args.messages or ()):
        if problem := _role_problem(message):
            raise ValueError(f"messages.{index}: {problem}")
    images = [p for m in args.messages or () if isinstance(m.content, list)
              for p in m.content if isinstance(p, ImagePartIn)]
    if len(images) > MAX_IMAGES:
        raise ValueError(f"too many images: {len(images)}, the limit is {MAX_IMAGES} per call")
    total = sum(i.size for i in images)
    if total > MAX_IMAGES_TOTAL_BYTES:
        raise ValueError(f"images too large: {total} bytes together, the limit is {MAX_IMAGES_TOTAL_BYTES} per call")
    names = [t.name for t in args.tools or ()]
    if len(set(names)) != len(names):
        raise ValueError("tool names must be unique")
    if isinstance(args.tool_choice, NamedToolChoice) and args.tool_choice.name not in names:
        raise ValueError('tool_choice names a tool that is not in "tools"')
    if args.tool_choice is not None and args.tools is None and args.tool_choice != "none":
        raise ValueError('tool_choice needs "tools"')
    calls: set[str] = set()
    for message in args.messages or ():
        calls.update(c.id for c in message.tool_calls or ())
        # In a thread, the call may be in the stored history: gateway.threads checks it there.
        if message.role == "tool" and message.tool_call_id not in calls and args.thread_id is None:
            raise ValueError('a tool message\'s "tool_call_id" names no call of an earlier assistant message')


def _role_problem(message: MessageIn) -> str | None:
    if message.tool_calls is not None and message.role != "assistant":
        return 'only an assistant message may carry "tool_calls"'
    if message.role == "tool" and message.tool_call_id is None:
        return 'a tool message needs "tool_call_id", the id of the call it answers'
    if message.role != "tool" and (message.tool_call_id is not None or message.name is not None):
        return '"tool_call_id" and "name" belong to tool messages only'
    if message.role != "user" and isinstance(message.content, list) and any(
            isinstance(p, ImagePartIn) for p in message.content):
        return "images are accepted in user messages only"
    return None


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


class ListModelsInput(_Input):
    capability: Capability | None = Field(default=None, description="only models that serve this tool")
    feature: Feature | None = Field(default=None, description="only models with this feature")
    provider: _Name | None = None


# ------------------------------------------------------------------ outputs


class UsageOut(BaseModel):
    input_tokens: int | None = Field(default=None, description="including cached ones")
    output_tokens: int | None = Field(default=None, description="including reasoning ones")
    total_tokens: int | None = None
    cached_input_tokens: int | None = Field(
        default=None, description="of input_tokens, read from the provider's prompt cache; present only where the "
        "provider reports it")
    reasoning_tokens: int | None = Field(
        default=None, description="of output_tokens, spent thinking; present only where the provider reports it")


class ToolCallOut(BaseModel):
    id: str = Field(description="the call's id; a `tool` message answering it gives it as tool_call_id")
    name: str
    arguments: dict[str, Any] = Field(description="parsed from the provider's JSON")


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


def _nullable(shape: Any, description: str) -> dict[str, Any]:
    """``shape``'s schema, flat, with null allowed by a type list (no two-branch anyOf to check)."""
    schema = flatten(TypeAdapter(shape).json_schema())
    return {**schema, "type": [schema["type"], "null"], "description": description}


# Chat output fields that appear only when the call produced them (ChatOutput.structured):
# a plain text reply is composed, sent and checked against the schema as it was before them.
_CHAT_EXTRAS = ("tool_calls", "reasoning", "dropped", "adjusted", "thread_id", "thread")
_USAGE_EXTRAS = ("cached_input_tokens", "reasoning_tokens")


class ThreadStateOut(BaseModel):
    """Where a thread stands after this turn."""

    turn: int = Field(description="this turn's number in the thread, from 0")
    turns: int = Field(description="turns the thread holds now (sent as history on the next call)")
    tokens: int = Field(description="tokens of those turns: the provider's usage, else an estimate")
    dropped_turns: int = Field(description="oldest turns removed so far to keep the thread within its limits")
    dropped_now: int = Field(description="of those, removed by this turn (the history sent began with a marker)")
    expires_at: float | None = Field(description="when the thread expires unless continued (seconds since epoch)")


class ChatOutput(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    text: str = Field(description="the reply; with response_format, the JSON text (parsed in `json`)")
    model: str
    provider: str
    finish_reason: str | None = Field(description="stop, length (max_tokens reached), tool_calls (see "
                                      "`tool_calls`), content_filter, or the provider's own word otherwise")
    usage: UsageOut
    tool_calls: Annotated[list[ToolCallOut] | None, WithJsonSchema(_nullable(
        list[ToolCallOut], "the functions the model called (with `tools`)"))] = None
    reasoning: str | None = Field(default=None, description="the model's thinking text, when the call asked for it "
                                  "(reasoning.include_thoughts) and the provider gave it")
    parsed: Any = Field(default=None, alias="json", description="with response_format: the reply parsed, checked "
                        "against the schema (a reply that fails is the error invalid_output)")
    latency_ms: float
    request_id: str
    route: RouteOut
    chunks: int | None = Field(None, description="chatStream only: text deltas the provider's stream delivered "
                               "(the pieces `text` was put together from), counted whether or not they were "
                               "sent as progress")
    notifications: int | None = Field(None, description="chatStream only: progress notifications sent to this "
                                      "caller, one per delta; 0 when the request carried no progressToken")
    # One type list rather than a two-branch anyOf (gateway.flat_schema: cheaper for clients to check).
    dropped: Annotated[list[str] | None, WithJsonSchema({
        "type": ["array", "null"], "items": {"type": "string"},
        "description": "drop_unsupported only: the sampling parameters (or temperature) left out because the "
                       "provider or model does not take them"})] = None
    adjusted: Annotated[list[str] | None, WithJsonSchema({
        "type": ["array", "null"], "items": {"type": "string"},
        "description": "what the gateway changed to fit the model, e.g. a reasoning.budget_tokens outside the "
                       "range the model takes, moved to the nearest it does: asked -> sent (the range), or "
                       "given to a model that takes an effort or a thinking level instead: budget -> effort "
                       "(or -> thinking level)"})] = None
    thread_id: Annotated[str | None, WithJsonSchema({
        "type": ["string", "null"], "description": "thread calls only: the thread's id, to pass as thread_id on "
                                                   "the next call"})] = None
    thread: Annotated[ThreadStateOut | None, WithJsonSchema(_nullable(
        ThreadStateOut, "thread calls only: the thread after this turn"))] = None

    def structured(self) -> dict[str, Any]:
        """The ``structuredContent``: the optional extras only when present (``json`` when the call asked for it)."""
        data = self.model_dump(mode="json", by_alias=True)
        for key in _CHAT_EXTRAS:
            if data.get(key) is None:
                data.pop(key, None)
        if "parsed" not in self.model_fields_set:
            del data["json"]
        usage = data["usage"]
        for key in _USAGE_EXTRAS:
            if usage[key] is None:
                del usage[key]
        return data


class EmbedOutput(BaseModel):
    vectors: list[list[float]]
    dimensions: int
    model: str
    provider: str
    usage: UsageOut
    latency_ms: float
    request_id: str
    route: RouteOut


_CAPABILITY_SOURCE = (
    f"where the capabilities came from: config, server (the model type a server that discovers models reports: "
    f"{_DISCOVERING}), kind (all the provider kind can do), probe (a one-time test call), or name (guessed from "
    "the id)")
_FEATURES = "what the model can do beyond plain text: vision, json_schema, tools, reasoning"
_FEATURE_SOURCE = ("where the features came from: config (the model's `features` in providers.json), server (its "
                   "own listing says), or kind (all the provider kind's adapter can carry)")


class ModelOut(BaseModel):
    id: str
    capabilities: list[str]
    loaded: bool | None = None
    kind: str | None = None
    context_length: int | None = None
    capability_source: str | None = Field(default=None, description=_CAPABILITY_SOURCE)
    features: list[str] = Field(default_factory=list, description=_FEATURES)
    feature_source: str | None = Field(default=None, description=_FEATURE_SOURCE)
    max_output_tokens: int | None = None


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


class ListedModelOut(BaseModel):
    provider: str
    kind: str = Field(description=f"the provider's kind, one of: {', '.join(KINDS)}")
    id: str
    capabilities: list[str] = Field(description="tools it serves: chat, chatStream, embed")
    capability_source: str | None = Field(default=None, description=_CAPABILITY_SOURCE)
    features: list[str] = Field(description=_FEATURES)
    feature_source: str = Field(description=_FEATURE_SOURCE)
    context_length: int | None = Field(
        default=None, description="tokens of input it takes, where config or its server says")
    max_output_tokens: int | None = Field(
        default=None, description="tokens it may write, where config or its server says")
    loaded: bool | None = Field(
        default=None, description="servers that load models (LM Studio): whether it is in memory; an unloaded model "
        "is not routed to")
    priority: int | None = Field(default=None, description="from providers.json, lower is preferred; null for a model "
                                 "only its server listed (tried after the configured ones)")


class ListModelsOutput(BaseModel):
    models: list[ListedModelOut] = Field(description="in providers.json order: each provider's configured models, "
                                         "then the ones only its server listed")


class BudgetLeftOut(BaseModel):
    budget: str = Field(description="usd_per_day, usd_per_month or tokens_per_day")
    limit: float
    used: float = Field(description="spent plus what calls in flight hold; USD or tokens")
    left: float
    resets: str = Field(description="when it starts again: UTC midnight, or the 1st of the month at 00:00 UTC")


class ClientUsageOut(BaseModel):
    """The calling client's own spending (never another client's), from the usage ledger."""

    client: str
    usd_today: float = Field(description="USD since 00:00 UTC (priced calls only)")
    tokens_today: int = Field(description="input plus output tokens since 00:00 UTC")
    usd_this_month: float = Field(description="USD since the 1st of this month, 00:00 UTC")
    budgets: list[BudgetLeftOut] = Field(default_factory=list, description="this client's budgets and what is left")


class StoreHealthOut(BaseModel):
    backend: str = Field(description="sqlite, postgresql or memory; for a store that could not be opened, "
                         "the scheme of its URL")
    ok: bool = Field(description="false: tasks and threads are unavailable (stateless calls still work)")
    detail: str = Field(description="where the store is and its schema version; or what is wrong and what to do")


class HealthOutput(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(description="the workers' state; the store's is in `store`")
    version: str
    uptime_s: float
    workers: list[WorkerHealthOut]
    store: StoreHealthOut = Field(description="the store of tasks and threads, as last checked (every few seconds)")
    unpriced_models: list[str] = Field(default_factory=list, description=(
        "provider/model of each configured or discovered model without a price in providers.json (models of "
        "local kinds cost 0 without one): their calls' cost is recorded as unknown"))
    usage: Annotated[ClientUsageOut | None, WithJsonSchema(_nullable(
        ClientUsageOut, "the calling client's own usage today and this month and its budgets (as of the gateway's "
        "last read of the ledger, a few seconds at most); null without a client or a store"))] = None


# ------------------------------------------------------------------ errors


class ValidationErrorOut(BaseModel):
    path: str = Field(description="where in the reply, as a JSON Pointer; empty for the reply as a whole")
    message: str


# One nullable object, written flat (a type list, no anyOf) so strict clients check it cheaply.
_VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"], "description": "invalid_output: the most relevant mismatch",
    "properties": {"path": {"type": "string", "description": "where in the reply, as a JSON Pointer; empty for "
                            "the reply as a whole"}, "message": {"type": "string"}},
    "required": ["path", "message"]}


class ToolErrorOut(BaseModel):
    type: str = Field(description="Error class from the taxonomy, e.g. rate_limited")
    message: str
    retryable: bool
    retry_after_s: float | None = None
    provider: str | None = None
    request_id: str | None = None
    partial_text: str | None = Field(None, description="stream_interrupted: the text already sent")
    cause: str | None = Field(None, description="stream_interrupted: the type of the failure that broke the "
                              "stream, e.g. worker_lost or timeout")
    raw_text: str | None = Field(default=None, description="invalid_output: the model's reply as it came")
    validation_error: Annotated[ValidationErrorOut | None, WithJsonSchema(_VALIDATION_ERROR_SCHEMA)] = None
    usage: Annotated[UsageOut | None, WithJsonSchema(_nullable(
        UsageOut, "a stream that broke after its provider reported token counts: those counts (what the call "
        "cost so far)"))] = None


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

"""A chat call beyond plain text, built once from the validated input (issue #16).

``ChatCall.build`` turns ``ChatInput`` into the link's shapes (``shared.chat_parts``): parts,
tool specs, the tool choice, the response format, the reasoning pair and the sampling
parameters, and works out which model features the call needs. ``request`` then makes the
``ChatRequest`` for one route, dropping the sampling parameters that route's kind does not
take when the caller allowed it. A plain text chat never comes here (``ChatInput.plain``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.chat_inputs import ImagePartIn, JsonSchemaFormat, NamedToolChoice, ReasoningIn, TextPartIn
from gateway.tool_schemas import ChatInput, MessageIn
from shared.chat_parts import (
    SAMPLING_PARAMS,
    Feature,
    ImagePart,
    Part,
    Reasoning,
    ResponseFormat,
    Sampling,
    SamplingParam,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from shared.models import ChatRequest, Message

__all__ = ["EFFORT_BUDGETS", "ChatCall", "effort_for_budget", "plain_messages"]

Effort = Literal["low", "medium", "high"]
# A reasoning effort's thinking budget, and back: a budget below medium's is low, below
# high's is medium, else high (so each level's budget maps back to the level).
EFFORT_BUDGETS: dict[Effort, int] = {"low": 1024, "medium": 4096, "high": 16384}


def effort_for_budget(budget: int) -> Effort:
    if budget < EFFORT_BUDGETS["medium"]:
        return "low"
    return "medium" if budget < EFFORT_BUDGETS["high"] else "high"


def plain_messages(args: ChatInput) -> list[Message]:
    """A plain text chat's messages, as before issue #16."""
    if args.messages is not None:
        return [Message(m.role, m.content) for m in args.messages]  # type: ignore[arg-type]  # plain: str
    messages = [Message("system", args.system)] if args.system else []
    assert args.prompt is not None
    messages.append(Message("user", args.prompt))
    return messages


@dataclass(slots=True)
class ChatCall:
    """Everything of one chat call except the model, and the features it needs."""

    messages: list[Message]
    needs: frozenset[Feature]
    tools: list[ToolSpec] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    sampling: Sampling = field(default_factory=Sampling)
    drop_unsupported: bool = False

    @classmethod
    def build(cls, args: ChatInput) -> ChatCall:
        messages = _messages(args) if args.messages is not None else plain_messages(args)
        call = cls(messages, frozenset(), tools=_tools(args), tool_choice=_tool_choice(args),
                   response_format=_response_format(args), reasoning=_reasoning(args.reasoning),
                   sampling=_sampling(args), drop_unsupported=args.drop_unsupported)
        call.needs = call._needs()
        return call

    def _needs(self) -> frozenset[Feature]:
        needs: set[Feature] = set()
        for m in self.messages:
            if isinstance(m.content, list) and any(isinstance(p, ImagePart) for p in m.content):
                needs.add("vision")
            if m.tool_calls or m.role == "tool":
                needs.add("tools")
        if self.tools is not None or self.tool_choice is not None:
            needs.add("tools")
        if self.response_format is not None:
            needs.add("json_schema")
        if self.reasoning is not None:
            needs.add("reasoning")
        return frozenset(needs)

    def unsupported_sampling(self, taken: frozenset[SamplingParam]) -> list[SamplingParam]:
        """The sampling parameters this call sets that a kind taking ``taken`` does not."""
        given = self.sampling.given()
        return [p for p in SAMPLING_PARAMS if p in given and p not in taken]

    def request(self, model: str, max_tokens: int | None, temperature: float | None, stream: bool,
                traceparent: str | None, drop: list[SamplingParam],
                reasoning: Reasoning | None = None) -> ChatRequest:
        """The request to ``model``, without the sampling parameters in ``drop``, with
        ``reasoning`` (the call's, fitted to the model) in place of the call's own if given."""
        sampling = self.sampling
        if drop:
            sampling = Sampling(**{k: v for k, v in sampling.given().items() if k not in drop})
        return ChatRequest(model=model, messages=self.messages, max_tokens=max_tokens, temperature=temperature,
                           stream=stream, traceparent=traceparent, tools=self.tools, tool_choice=self.tool_choice,
                           response_format=self.response_format, reasoning=reasoning or self.reasoning,
                           sampling=sampling)


def _messages(args: ChatInput) -> list[Message]:
    names: dict[str, str] = {}
    messages = []
    for m in args.messages or ():
        calls = [ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls] if m.tool_calls else None
        names.update((c.id, c.name) for c in calls or ())
        name = m.name
        if m.role == "tool" and name is None and m.tool_call_id is not None:
            # ChatInput checked that an earlier call has this id; in a thread it may be in the
            # stored history, where gateway.threads finds it.
            name = names.get(m.tool_call_id)
        messages.append(Message(m.role, _content(m), calls, m.tool_call_id, name))
    return messages


def _content(message: MessageIn) -> str | list[Part]:
    if isinstance(message.content, str):
        return message.content
    parts: list[Part] = []
    for p in message.content:
        if isinstance(p, TextPartIn):
            parts.append(TextPart(p.text))
        elif isinstance(p, ImagePartIn) and p.data is not None and p.mimeType is not None:
            parts.append(ImagePart(p.data, p.mimeType))
    return parts


def _tools(args: ChatInput) -> list[ToolSpec] | None:
    return [ToolSpec(t.name, t.description, t.parameters) for t in args.tools] if args.tools is not None else None


def _tool_choice(args: ChatInput) -> ToolChoice | None:
    choice = args.tool_choice
    if choice is None:
        return None
    if isinstance(choice, NamedToolChoice):
        return ToolChoice("tool", choice.name)
    return ToolChoice(choice)


def _response_format(args: ChatInput) -> ResponseFormat | None:
    fmt = args.response_format
    if fmt is None:
        return None
    if isinstance(fmt, JsonSchemaFormat):
        return ResponseFormat("json_schema", fmt.json_schema, fmt.name, fmt.strict)
    return ResponseFormat("json_object")


def _reasoning(given: ReasoningIn | None) -> Reasoning | None:
    """Both halves of the pair: the one the caller left out follows from the other."""
    if given is None:
        return None
    if given.effort is not None:
        budget = given.budget_tokens if given.budget_tokens is not None else EFFORT_BUDGETS[given.effort]
        return Reasoning(given.effort, budget, given.include_thoughts)
    assert given.budget_tokens is not None  # ReasoningIn requires one of the two
    return Reasoning(effort_for_budget(given.budget_tokens), given.budget_tokens, given.include_thoughts)


def _sampling(args: ChatInput) -> Sampling:
    stop = [args.stop] if isinstance(args.stop, str) else args.stop
    return Sampling(stop=stop, top_p=args.top_p, seed=args.seed, presence_penalty=args.presence_penalty,
                    frequency_penalty=args.frequency_penalty)

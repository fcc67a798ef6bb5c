"""Chat beyond plain text in the OpenAI Chat Completions shape (issue #16), both ways.

Out: content parts (text, images as ``image_url`` data URLs), the assistant's tool calls
(arguments as a JSON *string*) and ``tool`` results, ``tools`` / ``tool_choice``,
``response_format`` (``json_schema`` / ``json_object``), ``reasoning_effort`` and the
sampling parameters. Back: tool calls with their arguments parsed (malformed JSON is a
clear provider error, never a traceback), tool-call fragments of a stream put together
by ``index``, usage details (cached and reasoning tokens), the finish reason normalised.

Only a call that uses a feature reaches this module: the plain text path in
``openai_compatible`` builds its payload and reads its reply as it always did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared import errors
from shared.chat_parts import ImagePart, ToolCall
from shared.models import ChatRequest, Message, Usage
from workers.providers.http_base import as_int

__all__ = [
    "ToolCallFragments",
    "finish_reason",
    "new_call_id",
    "parse_tool_calls",
    "request_extras",
    "usage",
    "wire_message",
]

# The legacy function-calling finish reason means what tool_calls means today.
_FINISH = {"function_call": "tool_calls"}
# OpenAI's JSON mode refuses a conversation that never says "json"; this says it.
JSON_HINT = "Reply with a JSON object."


def new_call_id() -> str:
    """An id for a tool call the provider sent without one: ``call_<12 hex>``."""
    return "call_" + os.urandom(6).hex()


def finish_reason(value: Any) -> str | None:
    """The provider's finish reason, normalised (stop | length | tool_calls | content_filter | its own word)."""
    if not isinstance(value, str):
        return None
    return _FINISH.get(value, value)


def usage(data: Any) -> Usage:
    """``usage`` with its details (``prompt_tokens`` includes the cached, ``completion_tokens`` the reasoning)."""
    if not isinstance(data, dict):
        return Usage()
    prompt, completion = data.get("prompt_tokens_details"), data.get("completion_tokens_details")
    return Usage(
        as_int(data.get("prompt_tokens")),
        as_int(data.get("completion_tokens")),
        as_int(prompt.get("cached_tokens")) if isinstance(prompt, dict) else None,
        as_int(completion.get("reasoning_tokens")) if isinstance(completion, dict) else None,
    )


# ---------------------------------------------------------------- out


def wire_message(message: Message) -> dict[str, Any]:
    """A message that is more than role and text: parts, the assistant's tool calls, or a tool result."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    wire: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, str):
        wire["content"] = message.content
    else:
        wire["content"] = [
            {"type": "image_url", "image_url": {"url": part.data_url}} if isinstance(part, ImagePart)
            else {"type": "text", "text": part.text}
            for part in message.content
        ]
    if message.tool_calls:
        wire["content"] = message.text or None  # the API wants null, not "", beside tool calls
        wire["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": orjson.dumps(call.arguments).decode()}}
            for call in message.tool_calls
        ]
    return wire


def request_extras(request: ChatRequest, payload: dict[str, Any]) -> None:
    """Add the call's sampling parameters, tools, tool choice, response format and reasoning effort."""
    payload.update(request.sampling.given())  # stop, top_p, seed and the penalties keep their names
    if request.tools is not None:
        payload["tools"] = [_tool(t.name, t.description, t.parameters) for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        payload["tool_choice"] = (
            {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
        )
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        spec = {"name": fmt.name, "schema": fmt.schema or {}, "strict": fmt.strict}
        payload["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif fmt is not None:
        payload["response_format"] = {"type": "json_object"}
        if not any("json" in m.text.lower() for m in request.messages):
            payload["messages"].insert(0, {"role": "system", "content": JSON_HINT})
    if request.reasoning is not None:
        payload["reasoning_effort"] = request.reasoning.effort


def _tool(name: str, description: str | None, parameters: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


# ---------------------------------------------------------------- back


def parse_tool_calls(raw: Any, provider: str) -> list[ToolCall]:
    """``message.tool_calls`` with arguments parsed; anything unreadable is a ``ProviderError`` saying what."""
    if not isinstance(raw, list):
        raise errors.ProviderError(f"{provider} returned tool calls that are not a list", provider=provider)
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(item, dict) or not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise errors.ProviderError(f"{provider} returned a tool call without a function name", provider=provider)
        given = item.get("id")
        call_id = given if isinstance(given, str) and given else new_call_id()
        calls.append(ToolCall(call_id, name, parse_arguments(function.get("arguments"), name, provider)))
    return calls


def parse_arguments(raw: Any, name: str, provider: str) -> dict[str, Any]:
    """A call's arguments, sent as a JSON string: an object, or a clear error naming the tool."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}  # a function without parameters
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise errors.ProviderError(
            f"{provider} returned a call to tool {name!r} whose arguments are not a JSON object", provider=provider)
    return value


@dataclass(slots=True)
class _Fragment:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolCallFragments:
    """The tool-call pieces of a stream, by ``index``: id and name first, arguments in fragments."""

    by_index: dict[int, _Fragment] = field(default_factory=dict)

    def add(self, pieces: Any) -> None:
        if not isinstance(pieces, list):
            return
        for piece in pieces:
            if not isinstance(piece, dict):
                continue
            index = as_int(piece.get("index"))
            fragment = self.by_index.setdefault(index if index is not None else len(self.by_index), _Fragment())
            if isinstance(piece.get("id"), str) and piece["id"]:
                fragment.id = piece["id"]
            function = piece.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    fragment.name += function["name"]
                if isinstance(function.get("arguments"), str):
                    fragment.arguments.append(function["arguments"])

    def calls(self, provider: str) -> list[ToolCall] | None:
        """The finished calls in index order, or None if the stream carried none."""
        if not self.by_index:
            return None
        raw = [{"id": f.id, "function": {"name": f.name, "arguments": "".join(f.arguments)}}
               for _, f in sorted(self.by_index.items())]
        return parse_tool_calls(raw, provider)

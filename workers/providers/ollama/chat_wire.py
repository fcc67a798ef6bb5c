"""A ``ChatRequest`` as Ollama's ``/api/chat`` body, and its answer back (issue #16).

Ollama's own shapes (``api/types.go``):

* Options: ``num_predict``, ``temperature``, ``stop``, ``top_p``, ``seed``,
  ``presence_penalty`` and ``frequency_penalty`` all live in ``options``.
* Structured output: ``format`` is a JSON Schema object, or ``"json"`` for any JSON.
* Images: a message's ``images``, a list of bare base64 strings (no ``data:`` prefix and no
  media type: the server sniffs it); the text parts joined are its ``content``.
* Tools: ``tools[{type: "function", function{name, description, parameters}}]``. Ollama has
  no ``tool_choice``: ``none`` is honoured by not offering the tools, while ``required``
  and a named tool cannot be enforced, so they are refused (``unsupported``) before any
  request instead of being silently weakened to ``auto``.
* Tool calls come back whole (never split across stream lines) as
  ``message.tool_calls[{id?, function{index, name, arguments{}}}]``, ``arguments`` an object;
  an older server sends no ``id``, so one is made up. A call's result goes back as
  ``{role: "tool", content, tool_name, tool_call_id}``. ``done_reason`` stays ``stop`` when the
  model called tools: the result says ``tool_calls`` then.
* Reasoning: ``think`` takes ``true`` or a level ``low|medium|high``; every thinking model
  accepts a level (GPT-OSS honours it, the others read it as ``true``), so the effort goes as
  the level. There is no token budget and no reasoning token count (``reasoning_tokens``
  stays None). The thinking text is ``message.thinking``, returned only when asked for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared import errors
from shared.chat_parts import ImagePart, ToolCall
from shared.models import ChatRequest, ChatResult, Message, Usage

__all__ = ["Aggregate", "chat_payload", "finish_reason", "refuse_tool_choice", "reply_calls", "reply_thinking"]

BadPayload = Callable[[str], errors.LLMCallerError]


def chat_payload(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body; a plain text chat gets exactly the short form it always had."""
    options: dict[str, Any] = {}
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.temperature is not None:
        options["temperature"] = request.temperature
    sampling = request.sampling
    # Spelled out, not Sampling.given(): a plain chat pays five attribute reads, not a dict build.
    if sampling.stop is not None or sampling.top_p is not None or sampling.seed is not None \
            or sampling.presence_penalty is not None or sampling.frequency_penalty is not None:
        options.update(sampling.given())  # Ollama's option names are ours
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} if type(m.content) is str and m.tool_calls is None
                     and m.tool_call_id is None and m.name is None else _message(m) for m in request.messages],
        "stream": stream,  # Ollama streams unless told not to
    }
    if options:
        payload["options"] = options
    if request.tools is not None or request.response_format is not None or request.reasoning is not None:
        _add_features(payload, request)
    return payload


def _message(message: Message) -> dict[str, Any]:
    """One message beyond plain text: images, the assistant's tool calls, a tool's result."""
    wire: dict[str, Any] = {"role": message.role, "content": message.text}
    if not isinstance(message.content, str):
        images = [p.data for p in message.content if isinstance(p, ImagePart)]
        if images:
            wire["images"] = images
    if message.tool_calls:
        wire["tool_calls"] = [{"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}
                              for i, c in enumerate(message.tool_calls)]
    if message.role == "tool":
        if message.name is not None:
            wire["tool_name"] = message.name
        if message.tool_call_id is not None:
            wire["tool_call_id"] = message.tool_call_id
    return wire


def _add_features(payload: dict[str, Any], request: ChatRequest) -> None:
    """Tools, ``format`` and ``think``, for a call that set them."""
    choice = request.tool_choice
    if request.tools and (choice is None or choice.mode != "none"):
        payload["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description or "", "parameters": t.parameters}} for t in request.tools]
    fmt = request.response_format
    if fmt is not None:
        payload["format"] = fmt.schema if fmt.type == "json_schema" and fmt.schema is not None else "json"
    if request.reasoning is not None:
        payload["think"] = request.reasoning.effort


def refuse_tool_choice(request: ChatRequest, provider: str) -> None:
    """``unsupported`` for a tool choice Ollama cannot enforce (``required``, a named tool)."""
    choice = request.tool_choice
    if choice is None or choice.mode in ("auto", "none") or not request.tools:
        return
    what = "a call to at least one tool" if choice.mode == "required" else f"a call to the tool {choice.name!r}"
    raise errors.Unsupported(
        f"{provider} (Ollama) cannot force {what}: its API has no tool_choice. Use tool_choice "
        "'auto' (the model decides) or 'none', or a provider that can force a tool call", provider=provider)


def reply_calls(message: dict[str, Any], bad: BadPayload) -> list[ToolCall]:
    """The tool calls in one answer message, arguments as objects; ids made up where missing."""
    raw = message.get("tool_calls")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("unreadable tool calls")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        arguments = function.get("arguments", {}) if isinstance(function, dict) else None
        if not isinstance(name, str) or not name or not isinstance(arguments, dict):
            raise bad("a tool call without a name or with arguments that are not an object")
        call_id = item.get("id")
        calls.append(ToolCall(call_id if isinstance(call_id, str) and call_id else _made_up_id(), name, arguments))
    return calls


def _made_up_id() -> str:
    return f"call_{secrets.token_hex(6)}"


def reply_thinking(message: dict[str, Any]) -> str:
    """The thinking text of one answer message ("" without any)."""
    thinking = message.get("thinking")
    return thinking if isinstance(thinking, str) else ""


def finish_reason(reason: Any, called: bool) -> str | None:
    """``done_reason`` normalised: ``tool_calls`` when the model called tools, else ``stop``,
    ``length`` (and any other word) as Ollama says it."""
    if called and reason in ("stop", None, ""):
        return "tool_calls"
    return reason if isinstance(reason, str) and reason else None


@dataclass(slots=True)
class Aggregate:
    """What a stream carried besides text: tool calls and thinking, gathered for the final result."""

    calls: list[ToolCall] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)

    def add(self, message: dict[str, Any], bad: BadPayload) -> None:
        if "tool_calls" in message:
            self.calls.extend(reply_calls(message, bad))
        if text := reply_thinking(message):
            self.thinking.append(text)

    def result(self, text: str, model: str, reason: Any, usage: Usage, request: ChatRequest) -> ChatResult:
        return ChatResult(text, model, finish_reason(reason, bool(self.calls)), usage, self.calls or None,
                          thoughts(request, "".join(self.thinking)))


def thoughts(request: ChatRequest, thinking: str) -> str | None:
    """The thinking text, only when the call asked for it and the model gave some."""
    reasoning = request.reasoning
    return thinking if reasoning is not None and reasoning.include_thoughts and thinking else None

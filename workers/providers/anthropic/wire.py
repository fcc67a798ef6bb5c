"""A ChatRequest in the Messages API's words: content blocks, tools, structured output, thinking.

Called only for a chat that carries more than plain text, so a plain chat keeps its cost.

* Messages: images become ``image`` blocks (base64 source), an assistant's tool calls
  ``tool_use`` blocks, and ``tool`` messages ``tool_result`` blocks in a user turn
  (consecutive results, and a user message right after them, share one user turn).
* Structured output: ``output_config.format`` on models that have it (``native_json``);
  otherwise, and for ``json_object``, a forced call of one tool (``JSON_TOOL``) whose
  input is the answer.
* Reasoning: ``thinking`` with the budget, ``max_tokens`` raised above it when needed.
  Anthropic wants the signed thinking block of an assistant turn that called tools
  echoed back; our messages do not carry it, so such a follow-up goes without thinking
  (the API's own advice when the block is missing).
"""

from __future__ import annotations

import re
from typing import Any

from shared import errors
from shared.chat_parts import ImagePart, Part, ResponseFormat
from shared.models import ChatRequest, Message
from workers.providers.anthropic.kind import KIND

__all__ = ["JSON_TOOL", "add_features", "forced_json", "native_json", "tool_use_id", "wire_messages"]

# The tool a structured answer is forced through when the model has no native JSON output.
JSON_TOOL = "json_response"
# Models with output_config.format (GA): Claude 4.5 and later (Sonnet 4.5, Haiku 4.5, Opus 4.5, 4.6...).
_VERSIONED = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d))?(?:\D|$)")
_MIN_NATIVE = (4, 5)
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")
_FORCED_WITH_THINKING = (
    "anthropic: thinking cannot be combined with a forced tool call (tool_choice required or a named tool, "
    "or structured output on a model without native JSON output, which goes through a forced tool); "
    "drop reasoning or the forced choice")


def native_json(model: str, setting: str, listed: bool | None = None) -> bool:
    """Whether ``model`` takes ``output_config.format``: the ``structured_output`` option, or on
    ``auto`` what the model listing said (``listed``), else its version read from its id (4.5+)."""
    if setting != "auto":
        return setting == "native"
    if listed is not None:
        return listed
    match = _VERSIONED.search(model)
    return match is not None and (int(match.group(1)), int(match.group(2) or 0)) >= _MIN_NATIVE


def tool_use_id(call_id: str) -> str:
    """A call id as Anthropic takes it (``^[a-zA-Z0-9_-]+$``): ids another provider made (or a
    client) may hold other characters; the same id maps the same way in call and result."""
    return call_id if _TOOL_ID.match(call_id) else _TOOL_ID_BAD.sub("_", call_id) or "call"


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The conversation (system messages left out), merging tool results into user turns."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            block = {"type": "tool_result", "tool_use_id": tool_use_id(message.tool_call_id or ""),
                     "content": message.text}
            _user_turn(out, [block], after_results=False)
        elif message.role == "user":
            _user_turn(out, _blocks(message.content), after_results=True)
        elif message.tool_calls:
            calls = [{"type": "tool_use", "id": tool_use_id(c.id), "name": c.name, "input": c.arguments}
                     for c in message.tool_calls]
            text = [{"type": "text", "text": message.text}] if message.text else []
            out.append({"role": "assistant", "content": text + calls})
        else:
            out.append({"role": "assistant", "content": _content(message.content)})
    return out


def _user_turn(out: list[dict[str, Any]], blocks: list[dict[str, Any]], *, after_results: bool) -> None:
    """Append to the open user turn of tool results, or start a new user turn."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "user" and isinstance(last["content"], list) and last["content"] \
            and last["content"][0].get("type") == "tool_result":
        last["content"].extend(blocks)
        return
    if after_results and len(blocks) == 1 and blocks[0]["type"] == "text":
        out.append({"role": "user", "content": blocks[0]["text"]})
    else:
        out.append({"role": "user", "content": blocks})


def _content(content: str | list[Part]) -> str | list[dict[str, Any]]:
    return content if isinstance(content, str) else _blocks(content)


def _blocks(content: str | list[Part]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [{"type": "image", "source": {"type": "base64", "media_type": p.mime_type, "data": p.data}}
            if isinstance(p, ImagePart) else {"type": "text", "text": p.text} for p in content]


def add_features(payload: dict[str, Any], request: ChatRequest, json_setting: str, listed: bool | None) -> None:
    """Tools, structured output and thinking, in place (``listed``: the listing's word on
    native structured output for this model, if any)."""
    if request.tools:
        payload["tools"] = [
            {"name": t.name, **({"description": t.description} if t.description else {}),
             "input_schema": t.parameters} for t in request.tools
        ]
    if request.tool_choice is not None and request.tools:
        choice = request.tool_choice
        payload["tool_choice"] = {"type": "tool", "name": choice.name} if choice.mode == "tool" else {
            "type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}
    if request.response_format is not None:
        _structured(payload, request.response_format, native_json(request.model, json_setting, listed))
    if request.reasoning is not None and not _continues_tool_use(request.messages):
        if payload.get("tool_choice", {}).get("type") in ("any", "tool"):
            raise errors.Unsupported(_FORCED_WITH_THINKING)
        budget = request.reasoning.budget_tokens
        payload["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if payload["max_tokens"] <= budget:
            payload["max_tokens"] = budget + KIND.budget_headroom


def _structured(payload: dict[str, Any], fmt: ResponseFormat, native: bool) -> None:
    if fmt.type == "json_schema" and native:
        payload["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema}}
        return
    schema = fmt.schema if fmt.type == "json_schema" and fmt.schema is not None else {"type": "object"}
    if schema.get("type") != "object":
        raise errors.Unsupported("anthropic: this model has no native structured output, and a tool's input "
                                 "(the fallback) must be a JSON object: give the schema an object at its root")
    tool = {"name": JSON_TOOL, "description": "Give the answer as this tool's input.", "input_schema": schema}
    payload["tools"] = [*payload.get("tools", []), tool]
    payload["tool_choice"] = {"type": "tool", "name": JSON_TOOL}


def _continues_tool_use(messages: list[Message]) -> bool:
    """The last assistant turn called tools (its signed thinking would have to come back)."""
    for message in reversed(messages):
        if message.role == "assistant":
            return bool(message.tool_calls)
    return False


def forced_json(payload: dict[str, Any]) -> bool:
    """The payload forces the structured-output tool: its call is the answer, not a tool call."""
    choice = payload.get("tool_choice")
    return isinstance(choice, dict) and choice.get("name") == JSON_TOOL

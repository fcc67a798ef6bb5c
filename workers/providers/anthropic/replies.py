"""A Messages reply back into a ChatResult: text, tool calls, thinking, usage, finish reason.

Streams record ``tool_use`` and ``thinking`` blocks by index (``BlockLog``) and turn them
into the final result at ``message_stop``; only text deltas go out as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.chat_parts import ToolCall
from shared.models import Usage
from workers.providers.http_base import as_int

__all__ = ["BlockLog", "Reply", "finish_reason", "read_blocks", "usage"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(reason: Any, *, json_tool: bool = False) -> str | None:
    """Normalised; the forced structured-output tool's call ends a plain answer (``stop``)."""
    if not isinstance(reason, str):
        return None
    if json_tool and reason == "tool_use":
        return "stop"
    return _FINISH.get(reason, reason)


def usage(data: Any, previous: Usage) -> Usage:
    """Merge a usage object: a count present in ``data`` replaces the earlier one. Input
    counts the cached reads and writes too (Anthropic reports them apart)."""
    if not isinstance(data, dict):
        return previous
    fresh, read, written = (as_int(data.get(k)) for k in
                            ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    output = as_int(data.get("output_tokens"))
    details = data.get("output_tokens_details")
    thinking = as_int(details.get("thinking_tokens")) if isinstance(details, dict) else None
    cached = read if read is not None else previous.cached_input_tokens
    total_in = previous.input_tokens
    if fresh is not None:
        total_in = fresh + (read or 0) + (written or 0)
    return Usage(total_in, output if output is not None else previous.output_tokens, cached,
                 thinking if thinking is not None else previous.reasoning_tokens)


@dataclass(slots=True)
class Reply:
    """What the content blocks said."""

    text: str
    tool_calls: list[ToolCall] | None
    thinking: str | None


class BadBlock(ValueError):
    """A content block we cannot read (the message says what)."""


def read_blocks(blocks: list[Any], *, json_tool: bool, include_thoughts: bool) -> Reply:
    """Text blocks joined, tool_use blocks as calls (or, under the JSON tool, as the text)."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            call = _tool_call(block.get("id"), block.get("name"), block.get("input"))
            if json_tool:
                texts = [orjson.dumps(call.arguments).decode()]  # the answer, not the model's preamble
            else:
                calls.append(call)
        elif kind == "thinking" and include_thoughts and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
    return Reply("".join(texts), calls or None, "\n\n".join(thoughts) if thoughts else None)


def _tool_call(call_id: Any, name: Any, arguments: Any) -> ToolCall:
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise BadBlock("a tool_use block without its id or name")
    if not isinstance(arguments, dict):
        raise BadBlock(f"tool-call arguments for {name} that are not a JSON object")
    return ToolCall(call_id, name, arguments)


@dataclass(slots=True)
class _Block:
    type: str
    id: Any = None
    name: Any = None
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BlockLog:
    """A stream's non-text blocks, by index, until ``message_stop``."""

    blocks: dict[int, _Block] = field(default_factory=dict)

    def start(self, index: Any, block: Any) -> None:
        if isinstance(index, int) and isinstance(block, dict) and block.get("type") in ("tool_use", "thinking"):
            self.blocks[index] = _Block(str(block["type"]), block.get("id"), block.get("name"))

    def delta(self, index: Any, delta: dict[str, Any]) -> None:
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None:
            return
        piece = delta.get("partial_json") if block.type == "tool_use" else delta.get("thinking")
        if isinstance(piece, str):
            block.parts.append(piece)

    def reply(self, *, json_tool: bool, include_thoughts: bool) -> Reply:
        """The tool calls and thinking, as blocks ``read_blocks`` understands."""
        blocks: list[dict[str, Any]] = []
        for _, block in sorted(self.blocks.items()):
            if block.type == "thinking":
                blocks.append({"type": "thinking", "thinking": "".join(block.parts)})
                continue
            raw = "".join(block.parts) or "{}"
            try:
                arguments = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BadBlock(f"tool-call arguments for {block.name} that are not valid JSON") from None
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": arguments})
        return read_blocks(blocks, json_tool=json_tool, include_thoughts=include_thoughts)

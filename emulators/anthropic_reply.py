"""What the emulated Claude answers (decided by ``emulators.features``) as Messages content blocks.

A turn is optional thinking, then either text or one ``tool_use`` block. Text is cut by
``max_tokens`` and by the first stop sequence it contains.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from emulators import features
from emulators.anthropic_request import Features
from emulators.base import new_id
from emulators.content import ECHO_LIMIT_CHARS, count_words, make_reply, message_text

__all__ = ["Turn", "decide"]

_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Turn:
    """One answer: its thinking, its text deltas or its tool call, and why it stopped."""

    deltas: tuple[str, ...]
    stop_reason: str
    stop_sequence: str | None = None
    thinking: str | None = None
    tool_use: dict[str, Any] | None = None  # {"type": "tool_use", id, name, input}

    @property
    def text(self) -> str:
        return "".join(self.deltas)

    @property
    def thinking_tokens(self) -> int:
        return count_words(self.thinking or "")

    @property
    def output_tokens(self) -> int:
        body = len(orjson.dumps(self.tool_use["input"]).split(b",")) if self.tool_use else len(self.deltas)
        return body + self.thinking_tokens

    @property
    def signature(self) -> str:
        return base64.b64encode(hashlib.sha256((self.thinking or "").encode()).digest()).decode()

    def blocks(self) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if self.thinking is not None:
            content.append({"type": "thinking", "thinking": self.thinking, "signature": self.signature})
        content.append(self.tool_use if self.tool_use is not None else {"type": "text", "text": self.text})
        return content


def decide(label: str, messages: list[Any], max_tokens: int, feats: Features, violate: bool) -> Turn:
    """The emulated model's answer to ``messages`` under ``feats``."""
    user_text = _last_user_text(messages)
    # Adaptive thinking without an effort runs at the model's default, high.
    effort = (feats.effort or "high") if feats.adaptive else None
    thinking = features.thinking_text(user_text, effort) if feats.thinks else None
    result = _tool_result(messages)
    if result is not None:
        return _text_turn(features.after_tool_result(*result), max_tokens, feats, thinking)
    call = _tool_call(feats, violate) if messages[-1].get("role") == "user" else None
    if call is not None:
        return Turn((), "tool_use", thinking=thinking, tool_use=call)
    if feats.output_schema is not None:
        text = features.json_reply(feats.output_schema, "", violate=violate)
        return Turn((text,), "end_turn", thinking=thinking)
    reply = make_reply(label, user_text)
    return _text_turn(features.image_note(feats.images) + reply.text, max_tokens, feats, thinking)


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and (text := message_text(message.get("content"))):
            return text
    return ""


def _text_turn(text: str, max_tokens: int, feats: Features, thinking: str | None) -> Turn:
    stop_reason, stop_sequence = "end_turn", None
    hits = [(text.find(s), s) for s in feats.stop_sequences if s in text]
    if hits:
        cut, stop_sequence = min(hits)
        text, stop_reason = text[:cut], "stop_sequence"
    words = _WORD.findall(text)
    if len(words) > max_tokens:
        words, stop_reason, stop_sequence = words[:max_tokens], "max_tokens", None
        words[-1] = words[-1].rstrip()
    return Turn(tuple(words), stop_reason, stop_sequence, thinking)


def _tool_result(messages: list[Any]) -> tuple[str | None, str] | None:
    """(tool name, result text) when the last user turn returns a tool's result."""
    last = messages[-1]
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list):
        return None
    result = next((b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"), None)
    if result is None:
        return None
    names = {b.get("id"): b.get("name") for m in messages[:-1] if isinstance(m.get("content"), list)
             for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"}
    text = message_text(result.get("content"))
    return names.get(result.get("tool_use_id")), text[:ECHO_LIMIT_CHARS]


def _tool_call(feats: Features, violate: bool) -> dict[str, Any] | None:
    choice = feats.tool_choice or {"type": "auto"}
    if not feats.tools or choice["type"] == "none":
        return None
    tool = next((t for t in feats.tools if t["name"] == choice.get("name")), feats.tools[0])
    forced = choice["type"] == "tool"
    arguments = dict(features.SCHEMA_VIOLATION) if violate and forced else features.sample_instance(
        tool["input_schema"])
    return {"type": "tool_use", "id": new_id("toolu_01", 11), "name": tool["name"], "input": arguments}

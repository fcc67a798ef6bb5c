"""Reading Gemini's GenerateContentResponse: answer text, function calls, thoughts, finish
reason, usage and safety blocks.

A response (and each streamed chunk, which has the same shape) holds ``candidates``, each
with ``content.parts`` and, once done, a ``finishReason``; ``usageMetadata`` with the token
counts; and ``promptFeedback.blockReason`` when the prompt itself was refused (then there
are no candidates).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from shared import errors
from shared.chat_parts import ToolCall
from shared.models import Usage
from workers.providers.http_base import as_int

__all__ = [
    "BLOCKING_FINISH", "CandidateParts", "block_error", "candidate", "finish_reason", "made_up_id", "parts_text",
    "read_candidate", "usage",
]

# A candidate that ends with one of these was cut off by a filter, not finished.
BLOCKING_FINISH = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_LIKELY = frozenset({"MEDIUM", "HIGH"})


def candidate(data: dict[str, Any]) -> dict[str, Any] | None:
    """The first candidate (we never ask for more than one), or None."""
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def parts_text(cand: dict[str, Any] | None) -> str:
    """The answer text of a candidate: its text parts, without thought summaries."""
    content = cand.get("content") if cand else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    return "".join(
        p["text"] for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("thought") is not True
    )


def made_up_id() -> str:
    """An id for a function call the API sent without one: ``call_`` and 12 hex digits."""
    return "call_" + secrets.token_hex(6)


@dataclass(slots=True)
class CandidateParts:
    """What a candidate's parts (or a stream's chunks, added up) carry besides answer text;
    ``problem`` says what is wrong with a malformed part."""

    tool_calls: list[ToolCall] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    problem: str | None = None


def read_candidate(cand: dict[str, Any] | None, extra: CandidateParts | None) -> tuple[str, CandidateParts | None]:
    """A candidate's answer text, and ``extra`` with its function calls and thought texts
    added (created at the first one, so a plain text answer allocates nothing more)."""
    content = cand.get("content") if cand else None
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return "", extra
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            extra = extra or CandidateParts()
            extra.problem = "a content part that is not an object"
            break
        text = part.get("text")
        if isinstance(text, str):
            if part.get("thought") is not True:
                texts.append(text)
                continue
            extra = extra or CandidateParts()
            extra.thoughts.append(text)
        call = part.get("functionCall")
        if call is not None:
            extra = extra or CandidateParts()
            extra.problem = _add_call(call, extra.tool_calls)
            if extra.problem:
                break
    return "".join(texts), extra


def _add_call(call: Any, calls: list[ToolCall]) -> str | None:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
        return "a functionCall without a name"
    args = call.get("args", {})
    if not isinstance(args, dict):
        return f"a functionCall to {call['name'][:64]} whose args are not an object"
    given = call.get("id")
    calls.append(ToolCall(given if isinstance(given, str) and given else made_up_id(), call["name"], args))
    return None


def finish_reason(cand: dict[str, Any] | None, called: bool = False) -> str | None:
    """``stop`` / ``length`` like the other kinds, ``tool_calls`` when the model stopped to call
    functions (``called``); other reasons lower-cased (``malformed_function_call``)."""
    reason = cand.get("finishReason") if cand else None
    if not isinstance(reason, str) or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if called and reason == "STOP":
        return "tool_calls"
    return _FINISH.get(reason, reason.lower())


def usage(data: dict[str, Any], previous: Usage) -> Usage:
    """Counts from ``usageMetadata``; a chunk without them keeps the earlier ones.

    Input is ``promptTokenCount`` (cached tokens included) plus tool-use prompt tokens;
    output is ``candidatesTokenCount`` plus ``thoughtsTokenCount``, which are billed as
    output (as OpenAI's completion tokens include reasoning): their sum is Gemini's
    ``totalTokenCount``. ``cachedContentTokenCount`` (part of the prompt) is the cached input,
    ``thoughtsTokenCount`` the reasoning tokens.
    """
    meta = data.get("usageMetadata")
    if not isinstance(meta, dict):
        return previous
    prompt, candidates = as_int(meta.get("promptTokenCount")), as_int(meta.get("candidatesTokenCount"))
    thoughts, tool_prompt = as_int(meta.get("thoughtsTokenCount")), as_int(meta.get("toolUsePromptTokenCount"))
    input_tokens = None if prompt is None and tool_prompt is None else (prompt or 0) + (tool_prompt or 0)
    output_tokens = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    cached = as_int(meta.get("cachedContentTokenCount"))
    return Usage(
        input_tokens if input_tokens is not None else previous.input_tokens,
        output_tokens if output_tokens is not None else previous.output_tokens,
        cached if cached is not None else previous.cached_input_tokens,
        thoughts if thoughts is not None else previous.reasoning_tokens,
    )


def block_error(data: dict[str, Any], provider: str) -> errors.ContentBlocked | None:
    """A ``content_blocked`` error when the prompt was refused or the answer was cut by a filter.

    The message names the reason and the categories rated likely harmful; never any text.
    """
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if isinstance(reason, str) and reason != "BLOCK_REASON_UNSPECIFIED" and candidate(data) is None:
        message = f"{provider} blocked the prompt (blockReason {reason}{_categories(feedback)})"
        return errors.ContentBlocked(message, provider=provider)
    cand = candidate(data)
    finish = cand.get("finishReason") if cand else None
    if isinstance(finish, str) and finish in BLOCKING_FINISH:
        message = f"{provider} stopped the answer (finishReason {finish}{_categories(cand)})"
        return errors.ContentBlocked(message, provider=provider)
    return None


def _categories(holder: Any) -> str:
    """``; categories: HARM_CATEGORY_...`` for ratings that blocked or are likely harmful."""
    ratings = holder.get("safetyRatings") if isinstance(holder, dict) else None
    if not isinstance(ratings, list):
        return ""
    names = sorted({
        str(r["category"]) for r in ratings
        if isinstance(r, dict) and isinstance(r.get("category"), str)
        and (r.get("blocked") is True or r.get("probability") in _LIKELY)
    })
    # Category names are an enum; anything else is not echoed (it could be arbitrary text).
    names = [n for n in names if n.replace("_", "").isalnum() and n.isupper() and len(n) <= 64]
    return f"; categories: {', '.join(names)}" if names else ""

"""Reading Gemini replies: usage details, finish reasons, function calls and thoughts, and
the malformed parts that must become clear errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.chat_parts import ToolCall
from shared.models import Usage
from workers.providers.gemini import wire


def test_usage_details_keep_the_sums() -> None:
    meta = {"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 7,
            "thoughtsTokenCount": 20, "toolUsePromptTokenCount": 3, "totalTokenCount": 130}
    got = wire.usage({"usageMetadata": meta}, Usage())
    assert got == Usage(103, 27, 60, 20)
    assert got.total_tokens == meta["totalTokenCount"]
    assert wire.usage({}, got) == got  # a chunk without counts keeps the earlier ones


@pytest.mark.parametrize(("reason", "called", "expected"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", True, "length"),
    ("MALFORMED_FUNCTION_CALL", False, "malformed_function_call"), ("FINISH_REASON_UNSPECIFIED", False, None),
])
def test_finish_reasons(reason: str, called: bool, expected: str | None) -> None:
    assert wire.finish_reason({"finishReason": reason}, called) == expected


def _cand(*parts: Any) -> dict[str, Any]:
    return {"content": {"role": "model", "parts": list(parts)}}


def test_plain_text_allocates_no_extras() -> None:
    assert wire.read_candidate(_cand({"text": "a"}, {"text": "b"}), None) == ("ab", None)


def test_calls_and_thoughts_are_read() -> None:
    cand = _cand({"text": "hmm", "thought": True}, {"text": "ok"},
                 {"functionCall": {"id": "fc1", "name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"},
                 {"functionCall": {"name": "g"}})
    text, found = wire.read_candidate(cand, None)
    assert found is not None and found.problem is None
    assert found.thoughts == ["hmm"] and text == "ok"
    assert found.tool_calls[0] == ToolCall("fc1", "f", {"a": 1})
    made_up = found.tool_calls[1]
    assert (made_up.name, made_up.arguments) == ("g", {}) and re.fullmatch(r"call_[0-9a-f]{12}", made_up.id)


@pytest.mark.parametrize(("part", "problem"), [
    ({"functionCall": {"args": {}}}, "a functionCall without a name"),
    ({"functionCall": {"name": "f", "args": "[1]"}}, "a functionCall to f whose args are not an object"),
    ("text", "a content part that is not an object"),
])
def test_malformed_parts_say_what_is_wrong(part: Any, problem: str) -> None:
    _, found = wire.read_candidate(_cand(part), None)
    assert found is not None and found.problem == problem

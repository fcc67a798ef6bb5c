"""Response composition: one shape per tool whichever provider answered; errors as structured content."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from gateway.compose import chat_output, error_result, success_result
from gateway.router import Route
from gateway.tool_schemas import ChatOutput, output_schema
from shared import errors
from shared.chat_parts import ResponseFormat, ToolCall
from shared.models import ChatResult, Usage

ROUTE = Route("anthropic", "claude-haiku-4-5", "configured default for chat")


def test_chat_output_fills_every_field_from_the_worker_reply() -> None:
    reply = {"text": "hi", "model": "claude-haiku-4-5-20251001", "finish_reason": "stop",
             "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
    out = chat_output(reply, ROUTE, "rid", 12.34567, chunks=None)
    # A plain text reply carries exactly what it did before issue #16: no empty extras.
    assert out.structured() == {
        "text": "hi", "model": "claude-haiku-4-5-20251001", "provider": "anthropic", "finish_reason": "stop",
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}, "latency_ms": 12.346,
        "request_id": "rid", "route": {"provider": "anthropic", "model": "claude-haiku-4-5",
                                       "reason": "configured default for chat", "fallback_from": []},
        "chunks": None, "notifications": None}
    result = success_result(out, out.text)
    assert result.content[0].text == "hi" and result.structured_content == out.structured()


def test_error_result_carries_the_taxonomy_payload_and_a_readable_line() -> None:
    exc = errors.RateLimited("openai asks to slow down", provider="openai", request_id="r1", retry_after_s=2.5)
    result = error_result(exc)
    assert result.is_error
    assert result.content[0].text == "rate_limited: openai asks to slow down (retryable, after 2.5s)"
    assert result.structured_content == {"error": {
        "type": "rate_limited", "message": "openai asks to slow down", "retryable": True,
        "retry_after_s": 2.5, "provider": "openai", "request_id": "r1"}}
    assert error_result(errors.NotFound("no such model")).content[0].text == "not_found: no such model"


def test_partial_text_travels_with_an_interrupted_stream() -> None:
    exc = errors.StreamInterrupted("broke", provider="openai", partial_text="Hello wor")
    assert error_result(exc).structured_content["error"]["partial_text"] == "Hello wor"  # type: ignore[index]


def test_tool_calls_thinking_and_usage_details_appear_when_the_reply_has_them() -> None:
    reply = ChatResult("", "gpt-4o", "tool_calls", Usage(10, 7, cached_input_tokens=4, reasoning_tokens=5),
                       [ToolCall("call_0123456789ab", "get_weather", {"city": "Oslo"})], "thinking...").to_wire()
    structured = success_result(chat_output(reply, ROUTE, "rid", 1.0)).structured_content
    assert structured is not None
    assert structured["tool_calls"] == [{"id": "call_0123456789ab", "name": "get_weather",
                                         "arguments": {"city": "Oslo"}}]
    assert structured["reasoning"] == "thinking..." and structured["finish_reason"] == "tool_calls"
    assert structured["usage"] == {"input_tokens": 10, "output_tokens": 7, "total_tokens": 17,
                                   "cached_input_tokens": 4, "reasoning_tokens": 5}
    assert "json" not in structured
    Draft202012Validator(output_schema(ChatOutput)).validate(structured)


def test_a_structured_reply_is_parsed_into_json_and_checked_against_the_declared_schema() -> None:
    fmt = ResponseFormat("json_schema", {"type": "object", "properties": {"n": {"type": "integer"}}})
    reply = ChatResult('{"n": 3}', "gpt-4o", "stop").to_wire()
    structured = success_result(chat_output(reply, ROUTE, "rid", 1.0, response_format=fmt)).structured_content
    assert structured is not None and structured["json"] == {"n": 3} and structured["text"] == '{"n": 3}'
    Draft202012Validator(output_schema(ChatOutput)).validate(structured)
    # JSON null is a value the schema may allow: it is kept, not mistaken for "absent".
    null_reply = ChatResult("null", "gpt-4o", "stop").to_wire()
    allowed = ResponseFormat("json_schema", {"type": ["object", "null"]})
    out = success_result(chat_output(null_reply, ROUTE, "rid", 1.0, response_format=allowed)).structured_content
    assert out is not None and "json" in out and out["json"] is None


def test_a_reply_that_calls_tools_is_not_parsed_as_the_structured_answer() -> None:
    fmt = ResponseFormat("json_object")
    reply = ChatResult("", "gpt-4o", "tool_calls", tool_calls=[ToolCall("c1", "f", {})]).to_wire()
    structured = success_result(chat_output(reply, ROUTE, "rid", 1.0, response_format=fmt)).structured_content
    assert structured is not None and "json" not in structured and structured["tool_calls"][0]["name"] == "f"


def test_invalid_output_error_result_has_the_raw_text_and_first_error_and_matches_the_schema() -> None:
    exc = errors.InvalidOutput("the reply is not JSON", raw_text="nope", provider="openai",
                               validation_error={"path": "", "message": "Expecting value"})
    structured = error_result(exc).structured_content
    assert structured is not None
    assert structured["error"]["raw_text"] == "nope"
    assert structured["error"]["validation_error"] == {"path": "", "message": "Expecting value"}
    Draft202012Validator(output_schema(ChatOutput)).validate(structured)

"""Response composition: one shape per tool whichever provider answered; errors as structured content."""

from __future__ import annotations

from gateway.compose import chat_output, error_result, success_result
from gateway.router import Route
from shared import errors

ROUTE = Route("anthropic", "claude-haiku-4-5", "configured default for chat")


def test_chat_output_fills_every_field_from_the_worker_reply() -> None:
    reply = {"text": "hi", "model": "claude-haiku-4-5-20251001", "finish_reason": "stop",
             "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}
    out = chat_output(reply, ROUTE, "rid", 12.34567, chunks=None)
    assert out.model_dump() == {
        "text": "hi", "model": "claude-haiku-4-5-20251001", "provider": "anthropic", "finish_reason": "stop",
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}, "latency_ms": 12.346,
        "request_id": "rid", "route": {"provider": "anthropic", "model": "claude-haiku-4-5",
                                       "reason": "configured default for chat", "fallback_from": []},
        "chunks": None, "notifications": None, "dropped": None}
    result = success_result(out, out.text)
    assert result.content[0].text == "hi" and result.structured_content == out.model_dump(mode="json")


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

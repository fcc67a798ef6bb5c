"""Anthropic adapter: request shape, Messages results, every stream event shape, listing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared import errors
from shared.models import ChatRequest, ChatResult, EmbedRequest, Message, Usage
from tests.unit.workers.providers.helpers import (
    SECRET,
    Recorder,
    collect,
    config,
    deltas,
    json_response,
    named,
    request,
    run_with,
    split,
    stream_response,
)
from workers.providers.anthropic.adapter import DEFAULT_MAX_TOKENS, AnthropicAdapter

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test-4",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": " there"},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 12, "output_tokens": 4},
}


def stream_events(*, stop: bool = True, extra: bytes = b"") -> bytes:
    start = {
        "type": "message_start",
        "message": {
            **MESSAGE,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    }
    parts = [
        named("message_start", start),
        named(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        named("ping", {"type": "ping"}),
        named(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        ),
        named(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "not answer text"},
            },
        ),
        named(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
            },
        ),
        extra,
        named(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        ),
        named("content_block_stop", {"type": "content_block_stop", "index": 0}),
        named(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
        ),
        named("brand_new_event", {"type": "brand_new_event"}),
    ]
    if stop:
        parts.append(named("message_stop", {"type": "message_stop"}))
    return b"".join(parts)


@pytest.mark.parametrize(("extra", "sent"), [
    ({}, "2023-06-01"),  # the declared default
    ({"options": {"api_version": "2024-10-22"}}, "2024-10-22"),
    ({"anthropic_version": "2024-01-01"}, "2024-01-01"),  # an older file's top-level key, moved into options
])
def test_the_version_header_comes_from_the_kinds_options(extra: dict[str, Any], sent: str) -> None:
    rec = Recorder(json_response(200, MESSAGE))
    run_with(AnthropicAdapter, rec, lambda a: a.chat(request()), cfg=config("anthropic", **extra))
    assert rec.last.headers["anthropic-version"] == sent


def stream(handler: Any, req: ChatRequest | None = None) -> tuple[list[Any], BaseException | None]:
    return run_with(AnthropicAdapter, handler, lambda a: collect(a.stream_chat(req or request())))


def test_request_shape_and_headers() -> None:
    rec = Recorder(json_response(200, MESSAGE))
    cfg = config("anthropic", options={"api_version": "2024-01-01"})
    msgs = [
        Message("system", "Rule one."),
        Message("user", "Hi"),
        Message("system", "Rule two."),
        Message("assistant", "Yo"),
        Message("user", "Again"),
    ]
    run_with(AnthropicAdapter, rec, lambda a: a.chat(ChatRequest("claude-x", msgs, temperature=0.5)), cfg=cfg)
    req = rec.last
    assert str(req.url) == "https://api.anthropic.test/v1/messages"
    assert req.headers["x-api-key"] == SECRET
    assert req.headers["anthropic-version"] == "2024-01-01"
    assert "authorization" not in req.headers
    assert rec.body() == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,  # required by the API even when the caller gave none
        "system": "Rule one.\n\nRule two.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Yo"},
            {"role": "user", "content": "Again"},
        ],
        "temperature": 0.5,
    }


def test_explicit_max_tokens_and_no_system() -> None:
    rec = Recorder(json_response(200, MESSAGE))
    req = ChatRequest("claude-x", [Message("user", "Hi")], max_tokens=64)
    run_with(AnthropicAdapter, rec, lambda a: a.chat(req))
    assert rec.body()["max_tokens"] == 64
    assert "system" not in rec.body() and "stream" not in rec.body()


def test_chat_result_joins_text_blocks_only() -> None:
    result = run_with(AnthropicAdapter, Recorder(json_response(200, MESSAGE)), lambda a: a.chat(request()))
    assert result == ChatResult("Hello there", "claude-test-4", "stop", Usage(12, 4))


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "pause_turn"),  # no common word: the provider's own
        (None, None),
    ],
)
def test_finish_reason_mapping(stop_reason: str | None, finish: str | None) -> None:
    answer = json_response(200, {**MESSAGE, "stop_reason": stop_reason})
    assert run_with(AnthropicAdapter, Recorder(answer), lambda a: a.chat(request())).finish_reason == finish


def test_chat_error_is_mapped_with_retry_after() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(errors.Overloaded) as info:
        run_with(
            AnthropicAdapter,
            Recorder(json_response(529, body, {"retry-after": "4"})),
            lambda a: a.chat(request()),
        )
    assert info.value.retry_after_s == 4.0


@pytest.mark.parametrize("size", [1, 5, 64, 100_000])
def test_stream_every_event_shape(size: int) -> None:
    rec = Recorder(lambda _: stream_response(split(stream_events(), size)))
    items, exc = stream(rec)
    assert exc is None
    assert rec.body()["stream"] is True and rec.last.headers["accept"] == "text/event-stream"
    assert deltas(items) == ["Hel", "lo"]
    # input usage from message_start, cumulative output usage from message_delta
    assert items[-1] == ChatResult("Hello", "claude-test-4", "length", Usage(12, 15))


def test_stream_without_event_lines_uses_the_data_type() -> None:
    body = stream_events().replace(b"event: ", b": was event ")  # comments now, so names come from "type"
    items, exc = stream(lambda _: stream_response(body))
    assert exc is None and deltas(items) == ["Hel", "lo"] and isinstance(items[-1], ChatResult)


def test_stream_error_event_after_200_keeps_partial_text() -> None:
    error = named("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    body = stream_events(stop=False).split(b"event: content_block_stop")[0] + error
    items, exc = stream(lambda _: stream_response(body))
    assert deltas(items) == ["Hel", "lo"]
    assert type(exc) is errors.Overloaded
    assert exc.partial_text == "Hello"


def test_stream_error_event_before_text() -> None:
    error = named(
        "error", {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    )
    items, exc = stream(lambda _: stream_response(error))
    assert items == [] and type(exc) is errors.ProviderError and exc.partial_text is None


def test_stream_truncated_without_message_stop_is_interrupted() -> None:
    items, exc = stream(lambda _: stream_response(stream_events(stop=False)))
    assert deltas(items) == ["Hel", "lo"]
    assert type(exc) is errors.StreamInterrupted and exc.partial_text == "Hello"


def test_stream_malformed_event_after_text() -> None:
    items, exc = stream(
        lambda _: stream_response(stream_events(extra=b"event: content_block_delta\ndata: {oops\n\n"))
    )
    assert deltas(items) == ["Hel"]
    assert type(exc) is errors.StreamInterrupted and exc.partial_text == "Hel"


def test_stream_http_error_at_start() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    answer = httpx.Response(
        429, headers={"retry-after": "9", "content-type": "application/json"}, content=body
    )
    items, exc = stream(lambda _: answer)
    assert items == [] and type(exc) is errors.RateLimited and exc.retry_after_s == 9.0


def test_stream_transport_failure_keeps_partial_text() -> None:
    answer = stream_response(stream_events(stop=False)[:-10], fail_with=httpx.ReadTimeout("slow"))
    items, exc = stream(lambda _: answer)
    assert deltas(items) == ["Hel", "lo"]
    assert type(exc) is errors.Timeout and exc.partial_text == "Hello"


def test_embed_is_unsupported_without_a_request() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with pytest.raises(errors.Unsupported, match="embed is not supported by anthropic"):
        run_with(AnthropicAdapter, handler, lambda a: a.embed(EmbedRequest("m", ["x"])))


def test_list_models_follows_pages() -> None:
    pages = {
        None: {"data": [{"type": "model", "id": "claude-a"}], "has_more": True, "last_id": "claude-a"},
        "claude-a": {"data": [{"type": "model", "id": "claude-b"}], "has_more": False, "last_id": "claude-b"},
    }
    rec = Recorder(lambda req: json_response(200, pages[req.url.params.get("after_id")]))
    cfg = config("anthropic", models=[{"id": "claude-b", "capabilities": ["chat"]}])
    models = run_with(AnthropicAdapter, rec, lambda a: a.list_models(), cfg=cfg)
    assert [(r.method, r.url.path) for r in rec.requests] == [("GET", "/v1/models")] * 2
    assert rec.requests[0].headers["x-api-key"] == SECRET
    assert [(m.id, m.capabilities) for m in models] == [
        ("claude-a", ["chat", "chatStream"]),
        ("claude-b", ["chat"]),
    ]


def test_echoed_key_never_reaches_the_message() -> None:
    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"invalid x-api-key {SECRET}"},
    }
    with pytest.raises(errors.AuthError) as info:
        run_with(AnthropicAdapter, Recorder(json_response(401, body)), lambda a: a.chat(request()))
    assert SECRET not in info.value.message and SECRET not in str(info.value)

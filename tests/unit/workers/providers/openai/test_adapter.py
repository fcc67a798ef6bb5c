"""OpenAI adapter: request shapes, chat, streaming shapes, embeddings, listing, transport errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any, cast

import httpx
import pytest

from shared import errors
from shared.models import ChatResult, EmbedRequest, TextDelta, Usage
from tests.unit.workers.providers.helpers import (
    SECRET,
    ChunkStream,
    HttpxTestClient,
    Recorder,
    collect,
    config,
    deltas,
    json_response,
    request,
    run_with,
    split,
    sse,
    stream_response,
)
from workers.providers.base import ProviderAdapter
from workers.providers.openai.adapter import OpenAIAdapter

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-test-2025",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-test-2025",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE_CHUNK = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}
HAPPY_STREAM = sse(
    chunk("", role="assistant"), chunk("Hel"), chunk("lo"), chunk(finish="stop"), USAGE_CHUNK, "[DONE]"
)


def stream(handler: Any, **kwargs: Any) -> tuple[list[Any], BaseException | None]:
    return run_with(OpenAIAdapter, handler, lambda a: collect(a.stream_chat(request(**kwargs))))


# ---------------------------------------------------------------- chat


def test_chat_request_shape() -> None:
    rec = Recorder(json_response(200, COMPLETION))
    run_with(OpenAIAdapter, rec, lambda a: a.chat(request(max_tokens=50, temperature=0.2)))
    req = rec.last
    assert req.method == "POST"
    assert str(req.url) == "https://api.openai.test/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    assert req.headers["content-type"] == "application/json"
    assert rec.body() == {
        "model": "m-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 50,
        "temperature": 0.2,
    }


def test_chat_omits_unset_options() -> None:
    rec = Recorder(json_response(200, COMPLETION))
    run_with(OpenAIAdapter, rec, lambda a: a.chat(request()))
    assert set(rec.body()) == {"model", "messages"}


def test_chat_result() -> None:
    result = run_with(OpenAIAdapter, Recorder(json_response(200, COMPLETION)), lambda a: a.chat(request()))
    assert result == ChatResult("Hello!", "gpt-test-2025", "stop", Usage(9, 3))


def test_chat_null_content_is_empty_text() -> None:
    body = {
        **COMPLETION,
        "choices": [{"index": 0, "message": {"content": None}, "finish_reason": "content_filter"}],
    }
    result = run_with(OpenAIAdapter, Recorder(json_response(200, body)), lambda a: a.chat(request()))
    assert (result.text, result.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize("body", [b"not json", b'{"choices": []}', b'{"object": "chat.completion"}', b"null"])
def test_chat_unreadable_success_is_provider_error(body: bytes) -> None:
    with pytest.raises(errors.ProviderError, match="prov returned"):
        run_with(OpenAIAdapter, Recorder(httpx.Response(200, content=body)), lambda a: a.chat(request()))


def test_chat_http_error_is_mapped_with_retry_hint() -> None:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    answer = json_response(429, body, {"retry-after-ms": "1200"})
    with pytest.raises(errors.RateLimited) as info:
        run_with(OpenAIAdapter, Recorder(answer), lambda a: a.chat(request()))
    assert info.value.retry_after_s == 1.2
    assert "Rate limit reached" in info.value.message


def test_chat_200_with_error_payload_is_an_error() -> None:
    body = {"error": {"message": "upstream failed", "type": "server_error"}}
    with pytest.raises(errors.ProviderError, match="upstream failed"):
        run_with(OpenAIAdapter, Recorder(json_response(200, body)), lambda a: a.chat(request()))


# ---------------------------------------------------------------- streaming


def test_stream_request_shape() -> None:
    rec = Recorder(lambda _: stream_response(HAPPY_STREAM))
    stream(rec, max_tokens=7)
    assert rec.last.headers["accept"] == "text/event-stream"
    assert rec.last.headers["authorization"] == f"Bearer {SECRET}"
    body = rec.body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 7


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
def test_stream_deltas_then_result_with_usage_chunk(size: int) -> None:
    items, exc = stream(lambda _: stream_response(split(HAPPY_STREAM, size)))
    assert exc is None
    assert deltas(items) == ["Hel", "lo"]  # the empty role-only delta is not forwarded
    assert items[-1] == ChatResult("Hello", "gpt-test-2025", "stop", Usage(9, 2))
    assert sum(isinstance(i, ChatResult) for i in items) == 1


def test_stream_with_crlf_and_keepalive_comments() -> None:
    body = b": keep-alive\r\n\r\n" + sse(chunk("a"), chunk("b", finish="length"), "[DONE]", eol="\r\n")
    items, exc = stream(lambda _: stream_response(body))
    assert exc is None and deltas(items) == ["a", "b"]
    assert items[-1].finish_reason == "length"
    assert items[-1].usage == Usage()  # no usage chunk: counts unknown, not zero


def test_stream_done_without_trailing_blank_line() -> None:
    body = sse(chunk("x")) + b"data: [DONE]"
    items, exc = stream(lambda _: stream_response(body))
    assert exc is None and items[-1].text == "x"


def test_stream_deltas_arrive_before_the_rest_of_the_body() -> None:
    async def main() -> None:
        first_seen = asyncio.Event()

        class Gated(ChunkStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                yield sse(chunk("first"))
                await first_seen.wait()  # deadlocks if the adapter buffers the response
                yield sse(chunk("second"), "[DONE]")

        transport = httpx.MockTransport(lambda _: httpx.Response(200, stream=Gated([])))
        async with httpx.AsyncClient(transport=transport) as http:
            adapter = OpenAIAdapter("prov", config("openai"), SECRET, HttpxTestClient(http))
            texts = []
            async for item in adapter.stream_chat(request()):
                if isinstance(item, TextDelta):
                    texts.append(item.text)
                    first_seen.set()
            assert texts == ["first", "second"]

    asyncio.run(asyncio.wait_for(main(), timeout=2))


def test_stream_error_payload_after_text_keeps_partial_text() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    items, exc = stream(lambda _: stream_response(sse(chunk("Hel"), error, "[DONE]")))
    assert deltas(items) == ["Hel"]
    assert type(exc) is errors.ProviderError
    assert exc.partial_text == "Hel"
    assert "The server had an error" in exc.message


def test_stream_error_event_before_text_has_no_partial_text() -> None:
    error = {"error": {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}}
    items, exc = stream(lambda _: stream_response(sse(error, event="error")))
    assert items == [] and type(exc) is errors.RateLimited and exc.partial_text is None


def test_stream_truncated_without_done_is_interrupted() -> None:
    items, exc = stream(lambda _: stream_response(sse(chunk("Hel"), chunk("lo"))))
    assert deltas(items) == ["Hel", "lo"]
    assert type(exc) is errors.StreamInterrupted and exc.partial_text == "Hello"


def test_stream_empty_body_is_a_provider_error_not_an_interruption() -> None:
    items, exc = stream(lambda _: stream_response(b""))
    assert items == [] and type(exc) is errors.ProviderError and exc.partial_text is None


def test_stream_answered_with_an_html_page_is_a_provider_error() -> None:
    page = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    items, exc = stream(lambda _: stream_response(page, content_type="text/html; charset=utf-8"))
    assert items == [] and type(exc) is errors.ProviderError and "text/html" in exc.message


def test_stream_malformed_json_before_text_is_provider_error() -> None:
    items, exc = stream(lambda _: stream_response(b"data: {not json\n\n" + sse("[DONE]")))
    assert items == [] and type(exc) is errors.ProviderError and exc.partial_text is None


def test_stream_malformed_json_after_text_is_interrupted_with_partial() -> None:
    # Also what a connection cut mid-line looks like: the last event is half a JSON object.
    items, exc = stream(lambda _: stream_response(sse(chunk("Hi")) + b'data: {"choices": [{"del'))
    assert deltas(items) == ["Hi"]
    assert type(exc) is errors.StreamInterrupted and exc.partial_text == "Hi"


def test_stream_http_error_status_is_mapped() -> None:
    body = b'{"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'
    items, exc = stream(lambda _: stream_response(body, status=429, content_type="application/json"))
    assert items == [] and type(exc) is errors.QuotaExhausted


def test_stream_plain_json_answer_is_provider_error() -> None:
    answer = stream_response(b'{"id": "x", "choices": []}', content_type="application/json")
    items, exc = stream(lambda _: answer)
    assert items == [] and type(exc) is errors.ProviderError


def test_stream_line_over_the_size_cap_is_refused() -> None:
    # A server that never ends a line must not grow the worker's memory without bound.
    endless = [sse(chunk("ok"))] + [b"data: " + b"x" * 65_536] * 20
    items, exc = stream(lambda _: httpx.Response(200, stream=ChunkStream(endless)))
    assert deltas(items) == ["ok"]
    assert type(exc) is errors.StreamInterrupted and exc.partial_text == "ok"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ReadTimeout("timed out"), errors.Timeout),
        (httpx.RemoteProtocolError("peer closed connection"), errors.StreamInterrupted),
        (httpx.ReadError("reset by peer"), errors.ConnectionFailed),
    ],
)
def test_stream_transport_failure_midway_keeps_partial_text(
    failure: Exception, expected: type[errors.LLMCallerError]
) -> None:
    answer = httpx.Response(200, stream=ChunkStream([sse(chunk("par"), chunk("tial"))], fail_with=failure))
    items, exc = stream(lambda _: answer)
    assert deltas(items) == ["par", "tial"]
    assert type(exc) is expected and exc.partial_text == "partial"


def test_stream_closes_the_response_when_the_consumer_stops_early() -> None:
    body = ChunkStream([sse(chunk("a")), sse(chunk("b")), sse(chunk("c"), "[DONE]")])

    async def op(adapter: ProviderAdapter) -> None:
        # Adapters implement stream_chat as an async generator, so callers can close it.
        gen = cast(AsyncGenerator[TextDelta | ChatResult, None], adapter.stream_chat(request()))
        async with aclosing(gen) as items:
            async for _ in items:
                break

    run_with(OpenAIAdapter, lambda _: httpx.Response(200, stream=body), op)
    assert body.closed and body.sent == 1


def test_stream_closes_the_response_after_done() -> None:
    body = ChunkStream([sse(chunk("a"), "[DONE]"), b"data: ignored\n\n"])
    items, exc = stream(lambda _: httpx.Response(200, stream=body))
    assert exc is None and items[-1].text == "a" and body.closed and body.sent == 1


# ---------------------------------------------------------------- embeddings and listing

EMBEDDINGS = {
    "object": "list",
    "model": "text-embedding-test",
    "data": [
        {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
    ],
    "usage": {"prompt_tokens": 6, "total_tokens": 6},
}


def test_embed_request_and_order_by_index() -> None:
    rec = Recorder(json_response(200, EMBEDDINGS))
    result = run_with(OpenAIAdapter, rec, lambda a: a.embed(EmbedRequest("text-embedding-test", ["a", "b"])))
    assert str(rec.last.url) == "https://api.openai.test/v1/embeddings"
    assert rec.body() == {"model": "text-embedding-test", "input": ["a", "b"], "encoding_format": "float"}
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.model == "text-embedding-test"
    assert result.usage == Usage(6, None)


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": [0.1]}],  # one vector for two inputs
        [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}],  # duplicate index
        [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": "AAAA"}],  # base64, not floats
    ],
)
def test_embed_inconsistent_answer_is_provider_error(data: list[Any]) -> None:
    answer = json_response(200, {**EMBEDDINGS, "data": data})
    with pytest.raises(errors.ProviderError):
        run_with(OpenAIAdapter, Recorder(answer), lambda a: a.embed(EmbedRequest("m", ["a", "b"])))


def test_list_models_uses_config_capabilities_then_guesses() -> None:
    listing = {
        "object": "list",
        "data": [{"id": "gpt-x"}, {"id": "text-embedding-3-small"}, {"id": "o-mini"}],
    }
    rec = Recorder(json_response(200, listing))
    cfg = config("openai", models=[{"id": "o-mini", "capabilities": ["chat"]}])
    models = run_with(OpenAIAdapter, rec, lambda a: a.list_models(), cfg=cfg)
    assert rec.last.method == "GET" and str(rec.last.url) == "https://api.openai.test/v1/models"
    assert [(m.id, m.capabilities) for m in models] == [
        ("gpt-x", ["chat", "chatStream"]),
        ("text-embedding-3-small", ["embed"]),
        ("o-mini", ["chat"]),
    ]


# ---------------------------------------------------------------- transport failures


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError("connect to https://user:pw@api.openai.test failed"), errors.ConnectionFailed),
        (httpx.ConnectTimeout("connect timeout"), errors.Timeout),
        (httpx.ReadTimeout("read timeout"), errors.Timeout),
        (httpx.UnsupportedProtocol("bad scheme"), errors.ProviderError),
    ],
)
@pytest.mark.parametrize("op", ["chat", "stream", "embed", "list"])
def test_transport_errors_are_mapped_without_urls(
    failure: Exception, expected: type[errors.LLMCallerError], op: str
) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise failure

    calls = {
        "chat": lambda a: a.chat(request()),
        "stream": lambda a: collect(a.stream_chat(request())),
        "embed": lambda a: a.embed(EmbedRequest("m", ["x"])),
        "list": lambda a: a.list_models(),
    }
    cfg = config("openai", base_url="https://user:pw@api.openai.test/v1?key=sk-q")
    try:
        result = run_with(OpenAIAdapter, handler, calls[op], cfg=cfg)
    except errors.LLMCallerError as exc:
        caught: BaseException | None = exc
    else:
        caught = result[1] if isinstance(result, tuple) else None
    assert type(caught) is expected
    # The transport's own text never shows; only a connection failure names the base URL, cleaned.
    assert "pw" not in caught.message and "user" not in caught.message and "sk-q" not in caught.message
    if expected is errors.ConnectionFailed:
        assert caught.message == "cannot reach prov at https://api.openai.test/v1: connection failed"
    else:
        assert "://" not in caught.message
    assert caught.__cause__ is None and caught.__suppress_context__

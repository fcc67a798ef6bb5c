"""LM Studio adapter: OpenAI format under /v1, optional key, native listing and its quirks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared import errors
from shared.models import ChatResult, EmbedRequest, ModelInfo, Usage
from workers.adapters.lmstudio import LMStudioAdapter

from .helpers import (
    PLAIN_SECRET,
    Recorder,
    collect,
    config,
    deltas,
    json_response,
    request,
    run_with,
    sse,
    stream_response,
)

QUIRK = {"error": "Unexpected endpoint or method. (GET /api/v0/models)"}
COMPLETION = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "model": "qwen-local",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}
NATIVE = {
    "object": "list",
    "data": [
        {
            "id": "qwen-local",
            "object": "model",
            "type": "llm",
            "state": "loaded",
            "max_context_length": 32768,
        },
        {
            "id": "llava-local",
            "object": "model",
            "type": "vlm",
            "state": "not-loaded",
            "max_context_length": 4096,
        },
        {
            "id": "nomic-embed-text",
            "object": "model",
            "type": "embeddings",
            "state": "not-loaded",
            "max_context_length": 2048,
        },
        {"id": "odd-one", "object": "model", "type": "mystery"},
        {"object": "model", "type": "llm"},  # no id: skipped
    ],
}


def run(handler: Any, op: Any, **kwargs: Any) -> Any:
    return run_with(LMStudioAdapter, handler, op, **kwargs)


def test_chat_under_v1_without_auth_when_no_key() -> None:
    rec = Recorder(json_response(200, COMPLETION))
    result = run(rec, lambda a: a.chat(request(max_tokens=20)), secret=None)
    assert str(rec.last.url) == "http://localhost:1234/v1/chat/completions"
    assert "authorization" not in rec.last.headers
    assert rec.body()["max_tokens"] == 20 and "max_completion_tokens" not in rec.body()
    assert result == ChatResult("Hi", "qwen-local", "stop", Usage(5, 1))


def test_bearer_when_a_key_is_set() -> None:
    rec = Recorder(json_response(200, COMPLETION))
    run(rec, lambda a: a.chat(request()), secret=PLAIN_SECRET)
    assert rec.last.headers["authorization"] == f"Bearer {PLAIN_SECRET}"


def test_stream_without_usage_chunk() -> None:
    # LM Studio ignores stream_options.include_usage: no usage chunk, counts unknown.
    body = sse(
        {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        "[DONE]",
    )
    rec = Recorder(lambda _: stream_response(body))
    items, exc = run(rec, lambda a: collect(a.stream_chat(request())), secret=None)
    assert str(rec.last.url) == "http://localhost:1234/v1/chat/completions"
    assert exc is None and deltas(items) == ["Hel", "lo"]
    assert items[-1] == ChatResult("Hello", "m-1", "stop", Usage(None, None))


def test_embed_under_v1() -> None:
    body = {"data": [{"index": 0, "embedding": [1.0, 2.0]}], "model": "nomic-embed-text", "usage": {}}
    rec = Recorder(json_response(200, body))
    result = run(rec, lambda a: a.embed(EmbedRequest("nomic-embed-text", ["x"])), secret=None)
    assert str(rec.last.url) == "http://localhost:1234/v1/embeddings"
    assert result.vectors == [[1.0, 2.0]] and result.usage == Usage()


def test_native_listing() -> None:
    rec = Recorder(json_response(200, NATIVE))
    cfg = config("lmstudio", models=[{"id": "llava-local", "capabilities": ["chat"]}])
    models = run(rec, lambda a: a.list_models(), cfg=cfg, secret=None)
    assert [str(r.url) for r in rec.requests] == ["http://localhost:1234/api/v0/models"]
    assert models == [
        ModelInfo("qwen-local", ["chat", "chatStream"], loaded=True, kind="llm", context_length=32768),
        ModelInfo("llava-local", ["chat"], loaded=False, kind="vlm", context_length=4096),  # config wins
        ModelInfo("nomic-embed-text", ["embed"], loaded=False, kind="embeddings", context_length=2048),
        ModelInfo("odd-one", ["chat", "chatStream"], loaded=None, kind="mystery", context_length=None),
    ]


@pytest.mark.parametrize(
    "native_answer",
    [
        json_response(200, QUIRK),  # old server: the 200-with-error quirk
        json_response(404, {"error": "Not Found"}),
    ],
)
def test_listing_falls_back_to_v1_models(native_answer: httpx.Response) -> None:
    v1 = json_response(
        200, {"object": "list", "data": [{"id": "qwen-local"}, {"id": "text-embedding-nomic"}]}
    )
    rec = Recorder(lambda req: native_answer if req.url.path == "/api/v0/models" else v1)
    models = run(rec, lambda a: a.list_models(), secret=None)
    assert [r.url.path for r in rec.requests] == ["/api/v0/models", "/v1/models"]
    assert models == [
        ModelInfo("qwen-local", ["chat", "chatStream"]),
        ModelInfo("text-embedding-nomic", ["embed"]),
    ]


def test_listing_does_not_fall_back_when_the_server_is_down() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(errors.ConnectionFailed):
        run(handler, lambda a: a.list_models(), secret=None)


def test_discovery_disabled_returns_configured_models_without_a_request() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    cfg = config("lmstudio", discover_models=False, models=[{"id": "qwen-local", "capabilities": ["chat"]}])
    assert run(handler, lambda a: a.list_models(), cfg=cfg, secret=None) == [
        ModelInfo("qwen-local", ["chat"])
    ]


def test_unknown_endpoint_quirk_is_not_found() -> None:
    body = {"error": "Unexpected endpoint or method. (POST /v1/chat/completions)"}
    with pytest.raises(errors.NotFound, match="does not offer this endpoint"):
        run(Recorder(json_response(200, body)), lambda a: a.chat(request()), secret=None)


def test_unknown_endpoint_quirk_on_a_stream_is_not_found() -> None:
    answer = stream_response(
        b'{"error":"Unexpected endpoint or method. (POST /v1/chat/completions)"}',
        content_type="application/json; charset=utf-8",
    )
    items, exc = run(lambda _: answer, lambda a: collect(a.stream_chat(request())), secret=None)
    assert items == [] and type(exc) is errors.NotFound


def test_no_models_loaded_is_invalid_request_with_a_fix() -> None:
    body = {
        "error": {
            "message": "No models loaded. Please load a model in the developer page or use the "
            "`lms load` command.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    with pytest.raises(errors.InvalidRequest) as info:
        run(Recorder(json_response(404, body)), lambda a: a.chat(request()), secret=None)
    assert type(info.value) is errors.InvalidRequest
    assert "no model loaded" in info.value.message and "lms load" in info.value.message


def test_echoed_plain_key_is_scrubbed() -> None:
    body = {"error": {"message": f"bad token {PLAIN_SECRET}", "type": "invalid_request_error"}}
    with pytest.raises(errors.AuthError) as info:
        run(Recorder(json_response(401, body)), lambda a: a.chat(request()), secret=PLAIN_SECRET)
    assert PLAIN_SECRET not in info.value.message

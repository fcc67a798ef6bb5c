"""LM Studio adapter: OpenAI format under /v1, optional key, native listing and its quirks."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from shared import errors
from shared.models import ChatResult, EmbedRequest, ModelInfo, Usage
from tests.unit.workers.providers.helpers import (
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
from workers.providers.lmstudio.adapter import LMStudioAdapter

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


NOT_AN_EMBEDDER = {"error": {"message": 'Model "x" is of type llm and cannot be used for embeddings.',
                              "type": "invalid_request_error"}}
EMBEDDED = {"object": "list", "data": [{"index": 0, "embedding": [0.1, 0.2]}], "model": "m", "usage": {}}


def _server(listing: httpx.Response, embedders: set[str], probe_status: int = 400) -> Recorder:
    """A server whose model listing is ``listing`` and whose embeddings endpoint serves ``embedders``."""

    def handle(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/embeddings":
            model = orjson.loads(req.content)["model"]
            if model in embedders:
                return json_response(200, EMBEDDED)
            return json_response(probe_status, NOT_AN_EMBEDDER)
        return listing if req.url.path == "/api/v0/models" else json_response(
            200, {"object": "list", "data": [{"id": "qwen-local"}, {"id": "nomic-text-v1"}]})

    return Recorder(handle)


def test_native_listing_says_where_each_capability_came_from() -> None:
    rec = _server(json_response(200, NATIVE), embedders=set())
    cfg = config("lmstudio", models=[{"id": "llava-local", "capabilities": ["chat"]}])
    models = run(rec, lambda a: a.list_models(), cfg=cfg, secret=None)
    assert [r.url.path for r in rec.requests] == ["/api/v0/models", "/v1/embeddings"]  # odd-one probed
    assert models == [
        ModelInfo("qwen-local", ["chat", "chatStream"], loaded=True, kind="llm", context_length=32768,
                  capability_source="server"),
        ModelInfo("llava-local", ["chat"], loaded=False, kind="vlm", context_length=4096,
                  capability_source="config", features=["json_schema", "vision"]),  # config wins
        ModelInfo("nomic-embed-text", ["embed"], loaded=False, kind="embeddings", context_length=2048,
                  capability_source="server"),
        ModelInfo("odd-one", ["chat", "chatStream"], loaded=None, kind="mystery", context_length=None,
                  capability_source="probe"),
    ]


@pytest.mark.parametrize(
    "native_answer",
    [
        json_response(200, QUIRK),  # old server: the 200-with-error quirk
        json_response(404, {"error": "Not Found"}),
    ],
)
def test_listing_falls_back_to_v1_models_and_probes_each_model_once(native_answer: httpx.Response) -> None:
    rec = _server(native_answer, embedders={"nomic-text-v1"})  # an embedder whose id lacks "embed"

    async def twice(adapter: Any) -> tuple[list[ModelInfo], list[ModelInfo]]:
        return await adapter.list_models(), await adapter.list_models()

    first, second = run(rec, twice, secret=None)
    paths = [r.url.path for r in rec.requests]
    assert paths[:4] == ["/api/v0/models", "/v1/models", "/v1/embeddings", "/v1/embeddings"]
    assert paths.count("/v1/embeddings") == 2  # one probe per model, not per listing
    assert first == second == [
        ModelInfo("qwen-local", ["chat", "chatStream"], capability_source="probe"),
        ModelInfo("nomic-text-v1", ["embed"], capability_source="probe"),
    ]


def test_an_inconclusive_probe_falls_back_to_the_name_and_is_asked_again() -> None:
    rec = _server(json_response(404, {"error": "Not Found"}), embedders=set(), probe_status=503)

    async def twice(adapter: Any) -> list[ModelInfo]:
        await adapter.list_models()
        return list(await adapter.list_models())

    models = run(rec, twice, secret=None)
    assert models == [ModelInfo("qwen-local", ["chat", "chatStream"], capability_source="name"),
                      ModelInfo("nomic-text-v1", ["chat", "chatStream"], capability_source="name")]
    assert [r.url.path for r in rec.requests].count("/v1/embeddings") == 4


def test_an_unloaded_model_of_unknown_type_is_not_probed() -> None:
    listing = {"object": "list", "data": [{"id": "my-embedder", "type": "mystery", "state": "not-loaded"}]}
    rec = _server(json_response(200, listing), embedders={"my-embedder"})
    models = run(rec, lambda a: a.list_models(), secret=None)
    assert [r.url.path for r in rec.requests] == ["/api/v0/models"]  # a probe would load the model
    assert models[0].capability_source == "name" and models[0].capabilities == ["embed"]


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
        ModelInfo("qwen-local", ["chat"], capability_source="config")
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

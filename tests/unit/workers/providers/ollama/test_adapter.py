"""Ollama adapter: native /api/chat (NDJSON stream), /api/embed, discovery and the error map."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from cli.config_warnings import base_url_problem
from shared import errors
from shared.models import ChatResult, EmbedRequest, ModelInfo, Usage
from tests.unit.workers.providers.helpers import (
    SECRET,
    ChunkStream,
    Recorder,
    collect,
    config,
    deltas,
    json_response,
    request,
    run_with,
    stream_response,
)
from workers.providers.ollama.adapter import OllamaAdapter
from workers.providers.ollama.error_map import map_ollama_error

NDJSON = "application/x-ndjson"
ANSWER = {"model": "llama3.2:3b", "created_at": "2025-10-01T09:30:00.123456789Z",
          "message": {"role": "assistant", "content": "Hi there"}, "done": True, "done_reason": "stop",
          "total_duration": 40_000_000, "prompt_eval_count": 12, "eval_count": 2}


def run(handler: Any, op: Any, **kwargs: Any) -> Any:
    """``op`` on an adapter whose server answers with ``handler`` (a function or one response)."""
    return run_with(OllamaAdapter, handler if callable(handler) else Recorder(handler), op, **kwargs)


def line(content: str = "", **extra: Any) -> bytes:
    body = {"model": "llama3.2:3b", "created_at": "2025-10-01T09:30:00Z",
            "message": {"role": "assistant", "content": content}, "done": False, **extra}
    return orjson.dumps(body) + b"\n"


DONE = line(done=True, done_reason="stop", prompt_eval_count=12, eval_count=2)


def ndjson(*lines: bytes, size: int = 7, fail_with: Exception | None = None) -> httpx.Response:
    """A stream split into ``size``-byte chunks: boundaries fall inside lines and JSON."""
    data = b"".join(lines)
    return stream_response([data[i:i + size] for i in range(0, len(data), size)], content_type=NDJSON,
                           fail_with=fail_with)


# ---------------------------------------------------------------- chat


def test_chat_payload_and_answer() -> None:
    rec = Recorder(json_response(200, ANSWER))
    result = run(rec, lambda a: a.chat(request(max_tokens=20, temperature=0.3)), secret=None)
    assert str(rec.last.url) == "http://localhost:11434/api/chat"
    assert "authorization" not in rec.last.headers
    assert rec.body() == {"model": "m-1", "stream": False,
                          "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                          "options": {"num_predict": 20, "temperature": 0.3}}
    assert result == ChatResult("Hi there", "llama3.2:3b", "stop", Usage(12, 2))


def test_a_key_goes_as_bearer_for_a_proxy() -> None:
    rec = Recorder(json_response(200, ANSWER))
    run(rec, lambda a: a.chat(request()))
    assert rec.last.headers["authorization"] == f"Bearer {SECRET}"
    assert "options" not in rec.body()  # nothing to set: Ollama's own defaults apply


def test_unreadable_chat_answer() -> None:
    with pytest.raises(errors.ProviderError, match="unreadable chat answer"):
        run(json_response(200, {"model": "x", "done": True}), lambda a: a.chat(request()))


# ---------------------------------------------------------------- streams


def test_stream_yields_each_line_then_the_result() -> None:
    rec = Recorder(ndjson(line("Hel"), line("lo "), line("there"), DONE))
    items, exc = run(rec, lambda a: collect(a.stream_chat(request(max_tokens=5))))
    assert exc is None and deltas(items) == ["Hel", "lo ", "there"]
    assert items[-1] == ChatResult("Hello there", "llama3.2:3b", "stop", Usage(12, 2))
    assert rec.body()["stream"] is True and rec.body()["options"] == {"num_predict": 5}
    assert rec.last.headers["accept"] == NDJSON


def test_stream_ignores_thinking_and_blank_lines() -> None:
    thinking = orjson.dumps({"model": "m", "message": {"role": "assistant", "content": "", "thinking": "hmm"},
                             "done": False}) + b"\n"
    items, exc = run(ndjson(thinking, b"\n", line("Yes"), DONE), lambda a: collect(a.stream_chat(request())))
    assert exc is None and deltas(items) == ["Yes"] and items[-1].text == "Yes"


def test_an_error_line_before_any_text_is_a_retryable_provider_error() -> None:
    error = orjson.dumps({"error": "an error was encountered while running the model: unexpected EOF"}) + b"\n"
    items, exc = run(ndjson(error), lambda a: collect(a.stream_chat(request())))
    assert items == [] and isinstance(exc, errors.ProviderError) and exc.retryable
    assert "running the model" in str(exc) and exc.partial_text in (None, "")


def test_an_error_line_after_text_is_stream_interrupted_with_the_partial_text() -> None:
    error = orjson.dumps({"error": "llama runner process has terminated"}) + b"\n"
    items, exc = run(ndjson(line("Hello "), line("wor"), error), lambda a: collect(a.stream_chat(request())))
    assert deltas(items) == ["Hello ", "wor"]
    assert isinstance(exc, errors.StreamInterrupted) and exc.partial_text == "Hello wor"
    assert "llama runner process has terminated" in str(exc)


def test_a_stream_without_its_done_line() -> None:
    items, exc = run(ndjson(line("Hello ")), lambda a: collect(a.stream_chat(request())))
    assert isinstance(exc, errors.StreamInterrupted) and exc.partial_text == "Hello "
    items, exc = run(ndjson(), lambda a: collect(a.stream_chat(request())))
    assert items == [] and type(exc) is errors.ProviderError


def test_a_broken_line() -> None:
    items, exc = run(ndjson(line("Hi "), b'{"model": "m", "mess\n'), lambda a: collect(a.stream_chat(request())))
    assert isinstance(exc, errors.StreamInterrupted) and exc.partial_text == "Hi "
    assert deltas(items) == ["Hi "]
    items, exc = run(ndjson(b"[1, 2]\n"), lambda a: collect(a.stream_chat(request())))
    assert items == [] and type(exc) is errors.ProviderError and "not a JSON object" in str(exc)


def test_a_connection_cut_mid_stream() -> None:
    cut = httpx.RemoteProtocolError("peer closed connection")
    items, exc = run(ndjson(line("Hi "), fail_with=cut), lambda a: collect(a.stream_chat(request())))
    assert isinstance(exc, errors.StreamInterrupted) and exc.partial_text == "Hi "
    assert deltas(items) == ["Hi "]
    items, exc = run(ndjson(fail_with=cut), lambda a: collect(a.stream_chat(request())))
    assert items == [] and type(exc) is errors.ProviderError


def test_a_stream_answered_with_an_error_status_html_or_plain_json() -> None:
    missing = json_response(404, {"error": 'model "llama3.3:70b" not found, try pulling it first'})
    _, exc = run(missing, lambda a: collect(a.stream_chat(request())))
    assert isinstance(exc, errors.NotFound) and "`ollama pull llama3.3:70b`" in str(exc)
    html = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>sign in</html>")
    _, exc = run(html, lambda a: collect(a.stream_chat(request())))
    assert type(exc) is errors.ProviderError and "text/html page instead of an NDJSON stream" in str(exc)
    _, exc = run(json_response(200, ANSWER), lambda a: collect(a.stream_chat(request())))
    assert type(exc) is errors.ProviderError and "plain JSON answer" in str(exc)


def test_an_abandoned_stream_closes_its_connection() -> None:
    body = ChunkStream([line("a"), line("b"), DONE])
    response = httpx.Response(200, headers={"content-type": NDJSON}, stream=body)

    async def first_delta(adapter: OllamaAdapter) -> None:
        stream = adapter.stream_chat(request())
        await anext(stream)
        await stream.aclose()

    run(response, first_delta)
    assert body.closed and body.sent == 1


# ---------------------------------------------------------------- embed


def test_embed_sends_the_inputs_and_keeps_their_order() -> None:
    rec = Recorder(json_response(200, {"model": "all-minilm:22m", "embeddings": [[0.1, 0.2], [0.3, 0.4]],
                                       "prompt_eval_count": 2}))
    result = run(rec, lambda a: a.embed(EmbedRequest(model="all-minilm:22m", inputs=["a", "b"])))
    assert str(rec.last.url) == "http://localhost:11434/api/embed"
    assert rec.body() == {"model": "all-minilm:22m", "input": ["a", "b"]}
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]] and result.usage == Usage(2, None)


def test_embed_with_a_wrong_vector_count() -> None:
    answer = json_response(200, {"model": "m", "embeddings": [[0.1]]})
    with pytest.raises(errors.ProviderError, match="1 embeddings for 2 inputs"):
        run(answer, lambda a: a.embed(EmbedRequest(model="m", inputs=["a", "b"])))


# ---------------------------------------------------------------- error map


def body(text: str) -> bytes:
    return orjson.dumps({"error": text})


@pytest.mark.parametrize(
    ("status", "raw", "headers", "cls", "phrase"),
    [
        (404, body('model "qwen3:8b" not found, try pulling it first'), {}, errors.NotFound,
         "pull it with `ollama pull qwen3:8b`"),
        (404, body("model 'qwen3:8b' not found"), {}, errors.NotFound, "`ollama pull qwen3:8b`"),
        (404, b"404 page not found", {}, errors.NotFound, "check that the base URL is an Ollama server's root"),
        (400, body('"all-minilm:22m" does not support chat'), {}, errors.Unsupported, "does not support chat"),
        (400, body('"llama3.2:3b" does not support tools'), {}, errors.Unsupported, "does not support tools"),
        (400, body("invalid message format"), {}, errors.InvalidRequest, "invalid message format"),
        (503, body("server busy, please try again.  maximum pending requests exceeded"), {}, errors.Overloaded,
         "server busy"),
        (500, body("llama runner process has terminated: exit status 2"), {}, errors.ProviderError,
         "llama runner"),
        (401, body("unauthorized"), {}, errors.AuthError, "rejected the API key"),
        (403, b"<html>Forbidden</html>", {}, errors.PermissionDenied, "refused access"),
        (429, body("too many requests"), {"retry-after": "2"}, errors.RateLimited, "rate limiting"),
        (200, body("an error was encountered while running the model"), {}, errors.ProviderError,
         "reported in the response body"),
    ],
)
def test_error_map(status: int, raw: bytes, headers: dict[str, str], cls: type[errors.LLMCallerError],
                   phrase: str) -> None:
    error = map_ollama_error(status, headers, raw, "ollama-1", lambda text: text)
    assert type(error) is cls and error.provider == "ollama-1"
    assert phrase in error.message, error.message
    if headers:
        assert error.retry_after_s == 2.0


def test_error_text_never_carries_the_key() -> None:
    raw = body(f"unauthorized: invalid key {SECRET} for model 'x' not found")
    for status in (401, 404, 200):
        error = run(json_response(status, orjson.loads(raw)), lambda a: _raises(a))
        assert SECRET not in error.message


async def _raises(adapter: OllamaAdapter) -> errors.LLMCallerError:
    try:
        await adapter.chat(request())
    except errors.LLMCallerError as exc:
        return exc
    raise AssertionError("the call did not fail")


# ---------------------------------------------------------------- discovery


def tag(name: str, digest: str) -> dict[str, Any]:
    return {"name": name, "model": name, "digest": digest, "size": 1, "details": {"family": "llama"}}


class FakeServer:
    """/api/tags, /api/ps and /api/show answers, counting the /api/show calls per model."""

    def __init__(self, shows: dict[str, Any], *, ps: int = 200) -> None:
        self.tags = [tag(name, f"sha-{name}") for name in shows]
        self.shows = shows
        self.loaded = [next(iter(shows))]
        self.ps_status = ps
        self.show_calls: list[str] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if req.url.path == "/api/tags":
            return json_response(200, {"models": self.tags})
        if req.url.path == "/api/ps":
            if self.ps_status != 200:
                text = "404 page not found" if self.ps_status == 404 else '{"error": "internal error"}'
                return httpx.Response(self.ps_status, text=text)
            return json_response(200, {"models": [t for t in self.tags if t["name"] in self.loaded]})
        name = orjson.loads(req.content)["model"]
        self.show_calls.append(name)
        answer = self.shows[name]
        return answer if isinstance(answer, httpx.Response) else json_response(200, answer)


def show(*capabilities: str, context: int | None = None) -> dict[str, Any]:
    info = {"general.architecture": "llama", **({"llama.context_length": context} if context else {})}
    return {"capabilities": list(capabilities), "model_info": info, "details": {"family": "llama"}}


def listings(server: FakeServer, times: int, **cfg: Any) -> list[list[ModelInfo]]:
    async def op(adapter: OllamaAdapter) -> list[list[ModelInfo]]:
        return [await adapter.list_models() for _ in range(times)]

    return list(run(server, op, cfg=config("ollama", **cfg), secret=None))


def test_capabilities_come_from_show_and_are_asked_once_per_digest() -> None:
    server = FakeServer({"llama3.2:3b": show("completion", "tools", context=131072),
                         "all-minilm:22m": show("embedding"), "gemma3:1b": show("completion", "vision")})
    first, second = listings(server, 2)
    assert first == second
    assert [(m.id, m.capabilities, m.capability_source, m.loaded, m.context_length) for m in first] == [
        ("llama3.2:3b", ["chat", "chatStream"], "server", True, 131072),
        ("all-minilm:22m", ["embed"], "server", None, None),
        ("gemma3:1b", ["chat", "chatStream"], "server", None, None),
    ]
    assert server.show_calls == ["llama3.2:3b", "all-minilm:22m", "gemma3:1b"]  # cached the second time


def test_a_repulled_model_is_asked_again() -> None:
    server = FakeServer({"llama3.2:3b": show("completion")})

    async def op(adapter: OllamaAdapter) -> None:
        await adapter.list_models()
        server.tags[0]["digest"] = "sha-new"
        await adapter.list_models()

    run(server, op, cfg=config("ollama"), secret=None)
    assert server.show_calls == ["llama3.2:3b", "llama3.2:3b"]


def test_the_name_is_the_last_resort() -> None:
    server = FakeServer({"old-embed:1": {"details": {"family": "bert"}},  # an Ollama before "capabilities"
                         "busy:1": httpx.Response(503, json={"error": "server busy"})}, ps=404)
    first, second = listings(server, 2)
    assert [(m.id, m.capabilities, m.capability_source, m.loaded) for m in first] == [
        ("old-embed:1", ["embed"], "name", None),
        ("busy:1", ["chat", "chatStream"], "name", None),
    ]
    assert second == first
    assert server.show_calls == ["old-embed:1", "busy:1", "busy:1"]  # a busy server is asked again


@pytest.mark.parametrize("status", [404, 500])
def test_without_a_working_ps_every_pulled_model_still_serves(status: int) -> None:
    server = FakeServer({"llama3.2:3b": show("completion"), "all-minilm:22m": show("embedding")}, ps=status)
    [models] = listings(server, 1)
    assert [(m.id, m.loaded, m.capability_source) for m in models] == [
        ("llama3.2:3b", None, "server"), ("all-minilm:22m", None, "server")]


def test_configured_models_need_no_show() -> None:
    server = FakeServer({"llama3.2:3b": show("completion"), "all-minilm:22m": show("embedding")})
    [models] = listings(server, 1, models=[{"id": "all-minilm:22m", "capabilities": ["embed"]}])
    assert [(m.id, m.capability_source) for m in models] == [("llama3.2:3b", "server"), ("all-minilm:22m", "config")]
    assert server.show_calls == ["llama3.2:3b"]


def test_without_discovery_no_request_is_made() -> None:
    rec = Recorder(json_response(500, {"error": "must not be called"}))
    [models] = run(rec, lambda a: _one(a), cfg=config("ollama", discover_models=False,
                                                       models=[{"id": "qwen3:8b", "capabilities": ["chat"]}]))
    assert [(m.id, m.capability_source) for m in models] == [("qwen3:8b", "config")] and rec.requests == []


async def _one(adapter: OllamaAdapter) -> list[list[ModelInfo]]:
    return [await adapter.list_models()]


@pytest.mark.parametrize("path", ["/v1", "/api", "/api/chat"])
def test_a_base_url_with_a_path_the_worker_adds_is_warned(path: str) -> None:
    problem = base_url_problem("local", config("ollama", base_url=f"http://localhost:11434{path}"))
    assert problem is not None and "fix: use http://localhost:11434" in problem
    assert base_url_problem("local", config("ollama")) is None


def test_an_unreadable_listing() -> None:
    with pytest.raises(errors.ProviderError, match="unreadable model list"):
        run(json_response(200, {"data": []}), lambda a: a.list_models(), cfg=config("ollama"))

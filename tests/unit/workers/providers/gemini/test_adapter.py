"""Gemini adapter: the native API through the worker's aiohttp client against the Gemini emulator,
and the error map on bodies the emulator does not produce."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import pytest

from emulators.content import embedding_vector
from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, EmbedRequest, Message, TextDelta, Usage
from tests.unit.workers.providers.gemini.conftest import KEY
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.gemini.adapter import GeminiAdapter, model_path
from workers.providers.gemini.error_map import map_gemini_error, retry_delay_s

T = TypeVar("T")

GREETING = "Hello from the Gemini emulator. You said: "


def run(emulators: BackgroundEmulators, op: Callable[[GeminiAdapter], Awaitable[T]], key: str = KEY) -> T:
    config = ProviderConfig.model_validate({
        "kind": "gemini", "base_url": emulators.url("gemini") + "/v1beta", "secret": {"env": "X"},
        "models": [{"id": "gemini-3.5-flash-lite", "capabilities": ["chat", "chatStream"]}]})

    async def main() -> T:
        client = AiohttpClient(Timeouts(connect_s=2, read_s=5, pool_s=5), max_connections=4)
        try:
            return await op(GeminiAdapter("gem", config, key, client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def chat_request(text: str = "hi there", **extra: Any) -> ChatRequest:
    return ChatRequest("gemini-3.5-flash-lite", [Message("system", "Be brief."), Message("user", text)], **extra)


async def _stream(adapter: GeminiAdapter, request: ChatRequest) -> tuple[list[Any], BaseException | None]:
    items: list[Any] = []
    try:
        async for item in adapter.stream_chat(request):
            items.append(item)
    except errors.LLMCallerError as exc:
        return items, exc
    return items, None


def _raises(emulators: BackgroundEmulators, op: Callable[[GeminiAdapter], Awaitable[Any]],
            key: str = KEY) -> errors.LLMCallerError:
    with pytest.raises(errors.LLMCallerError) as caught:
        run(emulators, op, key)
    return caught.value


def test_chat_sends_system_instruction_and_reads_usage(emulators: BackgroundEmulators) -> None:
    result = run(emulators, lambda a: a.chat(chat_request(max_tokens=50, temperature=0.1)))
    # 2 system words + 2 user words in; the reply's 9 words out
    assert result == ChatResult(GREETING + "hi there", "gemini-3.5-flash-lite", "stop", Usage(4, 9))


def test_chat_cut_by_max_tokens_says_length(emulators: BackgroundEmulators) -> None:
    result = run(emulators, lambda a: a.chat(chat_request(max_tokens=2)))
    assert (result.text, result.finish_reason) == ("Hello from", "length")


def test_stream_yields_each_delta_then_the_result(emulators: BackgroundEmulators) -> None:
    items, error = run(emulators, lambda a: _stream(a, chat_request()))
    assert error is None
    texts = [i.text for i in items if isinstance(i, TextDelta)]
    assert len(texts) == 9 and "".join(texts) == GREETING + "hi there"
    assert items[-1] == ChatResult(GREETING + "hi there", "gemini-3.5-flash-lite", "stop", Usage(4, 9))


def test_embed_keeps_input_order(emulators: BackgroundEmulators) -> None:
    texts = ["one", "two", "three"]
    result = run(emulators, lambda a: a.embed(EmbedRequest("gemini-embedding-001", texts)))
    assert result.vectors == [embedding_vector(t) for t in texts]


def test_list_models_reads_methods_and_limits(emulators: BackgroundEmulators) -> None:
    listed = run(emulators, lambda a: a.list_models())
    assert [(m.id, m.capabilities, m.capability_source) for m in listed] == [
        ("gemini-3.5-flash-lite", ["chat", "chatStream"], "config"),
        ("gemini-3.8-flash", ["chat", "chatStream"], "server"),
        ("gemini-embedding-001", ["embed"], "server"),
    ]
    assert listed[2].context_length == 2048


def test_429_with_retry_info_is_rate_limited_with_its_delay(emulators: BackgroundEmulators,
                                                             control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 429, "delay_s": 1.5},
                       {"mode": "status", "status": 429, "error_code": "no_retry_info"})
    first = _raises(emulators, lambda a: a.chat(chat_request()))
    assert isinstance(first, errors.RateLimited) and first.retry_after_s == 1.5
    assert "RESOURCE_EXHAUSTED" in first.message
    second = _raises(emulators, lambda a: a.chat(chat_request()))
    assert isinstance(second, errors.RateLimited) and second.retry_after_s is None


@pytest.mark.parametrize("streamed", [False, True])
def test_a_429s_retry_info_reaches_the_rate_limiter(emulators: BackgroundEmulators, control: EmulatorControl,
                                                    streamed: bool) -> None:
    """The worker's limiter pauses for RetryInfo's delay, as it would for a Retry-After header."""
    control.add_faults({"mode": "status", "status": 429, "delay_s": 7.5})
    seen: list[tuple[int, float | None, float | None]] = []

    async def call(adapter: GeminiAdapter) -> Any:
        adapter.on_response = lambda status, _headers, exhausted, hint: seen.append((status, exhausted, hint))
        return await (_stream(adapter, chat_request()) if streamed else adapter.chat(chat_request()))

    if streamed:
        items, error = run(emulators, call)
        assert not items and isinstance(error, errors.RateLimited)
    else:
        assert isinstance(_raises(emulators, call), errors.RateLimited)
    assert seen == [(429, None, 7.5)]


@pytest.mark.parametrize(("status", "cls"), [
    (400, errors.InvalidRequest), (401, errors.AuthError), (403, errors.PermissionDenied), (404, errors.NotFound),
    (500, errors.ProviderError), (503, errors.Overloaded), (504, errors.Timeout), (501, errors.Unsupported),
])
def test_status_faults_map_to_the_taxonomy(emulators: BackgroundEmulators, control: EmulatorControl,
                                          status: int, cls: type[errors.LLMCallerError]) -> None:
    control.add_faults({"mode": "status", "status": status})
    error = _raises(emulators, lambda a: a.chat(chat_request()))
    assert type(error) is cls and f"HTTP {status}" in error.message


def test_wrong_key_is_auth_and_never_shown(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    wrong = "AIzaWrongKeyWrongKeyWrongKey0123456789"
    error = _raises(emulators, lambda a: a.chat(chat_request()), key=wrong)
    assert isinstance(error, errors.AuthError) and "API key not valid" in error.message
    control.add_faults({"mode": "echo_key_in_error", "status": 400})
    echoed = _raises(emulators, lambda a: a.chat(chat_request()))
    assert isinstance(echoed, errors.AuthError) and KEY not in echoed.message and KEY[8:20] not in echoed.message


def test_unknown_model_is_not_found(emulators: BackgroundEmulators) -> None:
    error = _raises(emulators, lambda a: a.chat(ChatRequest("gemini-9", [Message("user", "x")])))
    assert isinstance(error, errors.NotFound) and "models/gemini-9" in error.message


def test_blocked_prompt_is_content_blocked(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "content_blocked", "after_chunks": 0, "error_code": "PROHIBITED_CONTENT"})
    error = _raises(emulators, lambda a: a.chat(chat_request("secret prompt words")))
    assert isinstance(error, errors.ContentBlocked)
    assert error.message == ("gem blocked the prompt (blockReason PROHIBITED_CONTENT; "
                             "categories: HARM_CATEGORY_DANGEROUS_CONTENT)")


def test_answer_stopped_by_safety_keeps_the_partial_text(emulators: BackgroundEmulators,
                                                         control: EmulatorControl) -> None:
    control.add_faults({"mode": "content_blocked", "after_chunks": 2}, {"mode": "content_blocked", "after_chunks": 3})
    plain = _raises(emulators, lambda a: a.chat(chat_request()))
    assert isinstance(plain, errors.ContentBlocked) and "finishReason SAFETY" in plain.message
    items, error = run(emulators, lambda a: _stream(a, chat_request("do not echo me")))
    assert isinstance(error, errors.ContentBlocked) and error.partial_text == "Hello from the "
    assert "echo" not in error.message and len([i for i in items if isinstance(i, TextDelta)]) == 3


@pytest.mark.parametrize(("fault", "cls"), [
    ({"mode": "error_event", "after_chunks": 2}, errors.Overloaded),
    ({"mode": "error_event", "after_chunks": 2, "error_type": "RESOURCE_EXHAUSTED"}, errors.RateLimited),
    ({"mode": "truncated_stream", "after_chunks": 2}, errors.StreamInterrupted),
    ({"mode": "malformed", "after_chunks": 2}, errors.StreamInterrupted),
    ({"mode": "truncated_stream", "after_chunks": 0}, errors.ProviderError),
    ({"mode": "html"}, errors.ProviderError),
])
def test_stream_faults(emulators: BackgroundEmulators, control: EmulatorControl, fault: dict[str, Any],
                       cls: type[errors.LLMCallerError]) -> None:
    control.add_faults(fault)
    _, error = run(emulators, lambda a: _stream(a, chat_request()))
    assert type(error) is cls
    if fault.get("after_chunks") == 2:  # what went out before the fault travels with the error
        assert error is not None and error.partial_text == "Hello from "


def _body(error: dict[str, Any]) -> bytes:
    return orjson.dumps({"error": error})


def test_error_map_on_other_bodies() -> None:
    def mapped(status: int, error: dict[str, Any] | list[Any]) -> errors.LLMCallerError:
        body = orjson.dumps(error) if isinstance(error, list) else _body(error)
        return map_gemini_error(status, {}, body, "gem", lambda text: text.replace(KEY, "[REDACTED]"))

    too_long = mapped(400, {"code": 400, "status": "INVALID_ARGUMENT",
                            "message": "The input token count (1200000) exceeds the maximum number of tokens "
                                       "allowed (1048576)."})
    assert isinstance(too_long, errors.ContextLengthExceeded)
    as_array = mapped(503, [{"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}])
    assert isinstance(as_array, errors.Overloaded)
    scrubbed = mapped(400, {"code": 400, "status": "INVALID_ARGUMENT", "message": f"API key not valid: {KEY}"})
    assert isinstance(scrubbed, errors.AuthError) and KEY not in scrubbed.message
    assert isinstance(mapped(429, {"code": 429, "message": "x"}), errors.RateLimited)  # no status: HTTP decides


@pytest.mark.parametrize(("delay", "seconds"), [("47s", 47.0), ("1.5s", 1.5), ("0.250s", 0.25), ("", None),
                                               ("soon", None), ("-3s", None), ("12", None)])
def test_retry_delay_durations(delay: str, seconds: float | None) -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.Help"},
               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    assert retry_delay_s(details) == seconds


def test_model_path_keeps_one_segment() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("models/gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("../x?y") == "models/..%2Fx%3Fy"
    assert model_path("tunedModels/my-tune") == "tunedModels/my-tune"


@pytest.mark.parametrize("fault", [{"mode": "drop"}, {"mode": "close_mid_headers"}, {"mode": "malformed"}])
def test_broken_answers_are_provider_errors(emulators: BackgroundEmulators, control: EmulatorControl,
                                            fault: dict[str, Any]) -> None:
    control.add_faults(fault)
    assert type(_raises(emulators, lambda a: a.chat(chat_request()))) is errors.ProviderError


def test_torn_stream_and_stalls(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "truncated_stream", "after_chunks": 2, "close_connection": True},
                       {"mode": "silent_stream", "after_chunks": 2, "delay_s": 0.2},
                       {"mode": "delay", "delay_s": 0.2})
    _, torn = run(emulators, lambda a: _stream(a, chat_request()))
    assert isinstance(torn, errors.StreamInterrupted) and torn.partial_text == "Hello from "
    items, stalled = run(emulators, lambda a: _stream(a, chat_request()))
    assert stalled is None and items[-1].text == GREETING + "hi there"  # a stall, then the rest
    assert run(emulators, lambda a: a.chat(chat_request())).text == GREETING + "hi there"

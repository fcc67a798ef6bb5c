"""Gemini adapter beyond plain text (issue #16), against the Gemini emulator: usage details,
finish reasons and sampling, structured output, function calls (streamed too, and their
results sent back), images and thinking; and malformed replies as clear errors."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from emulators.content import count_words
from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from shared import errors
from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.models import ChatRequest, ChatResult, Message, TextDelta, Usage
from tests.unit.workers.providers.gemini.test_adapter import GREETING, _stream, chat_request, run
from workers.providers.gemini.adapter import GeminiAdapter, _features

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"]}
TOOLS = [ToolSpec("get_weather", "The weather in a city.", SCHEMA), ToolSpec("now", None, {"type": "object"})]
PNG = base64.b64encode(bytes(range(40))).decode()
CALL_ID = re.compile(r"call_[0-9a-f]{12}")


def _both(emulators: BackgroundEmulators, request: ChatRequest) -> tuple[ChatResult, ChatResult, list[str]]:
    """The answer to ``request`` as a chat, and as a stream: its final result and its text deltas."""
    whole = run(emulators, lambda a: a.chat(request))
    items, failure = run(emulators, lambda a: _stream(a, request))
    assert failure is None
    final = items[-1]
    assert isinstance(final, ChatResult)
    return whole, final, [i.text for i in items if isinstance(i, TextDelta)]


def test_sampling_passes_and_plain_usage_has_no_details(emulators: BackgroundEmulators) -> None:
    sampling = Sampling(stop=["zzz", "emulator"], top_p=0.5, seed=3)
    whole, streamed, deltas = _both(emulators, chat_request("hi", sampling=sampling))
    assert whole.text == streamed.text == "".join(deltas) == "Hello from the Gemini "  # cut by a stop sequence
    assert whole.finish_reason == streamed.finish_reason == "stop"
    assert whole.usage == streamed.usage == Usage(3, 4, None, None)  # 3.5 Flash-Lite thinks minimally unasked


def test_penalties_reach_a_model_that_takes_them_and_it_thinks_unasked(emulators: BackgroundEmulators) -> None:
    sampling = Sampling(stop=["zzz", "emulator"], presence_penalty=0.1, frequency_penalty=0.1)
    request = ChatRequest("gemini-3.8-flash", [Message("user", "hi")], sampling=sampling)
    whole, streamed, _ = _both(emulators, request)
    assert whole.text == streamed.text == "Hello from the Gemini "
    thoughts = count_words("Thinking (medium effort) about: hi. The answer follows.")  # its default level
    assert whole.usage == streamed.usage == Usage(1, 4 + thoughts, None, thoughts)
    assert whole.reasoning is None  # thoughts were not asked for


def test_penalties_to_flash_lite_are_the_providers_invalid_request(emulators: BackgroundEmulators) -> None:
    with pytest.raises(errors.InvalidRequest, match="presence_penalty"):
        run(emulators, lambda a: a.chat(chat_request("hi", sampling=Sampling(presence_penalty=0.1))))


def test_too_many_stop_sequences_is_the_providers_invalid_request(emulators: BackgroundEmulators) -> None:
    request = chat_request(sampling=Sampling(stop=list("abcdef")))
    with pytest.raises(errors.InvalidRequest) as refused:
        run(emulators, lambda a: a.chat(request))
    assert "stop sequences" in str(refused.value)


@pytest.mark.parametrize(("fmt", "expected"), [
    (ResponseFormat("json_schema", SCHEMA), {"city": "text", "days": 1}),
    (ResponseFormat("json_object"), {"reply": GREETING + "a city"}),
])
def test_structured_output(emulators: BackgroundEmulators, fmt: ResponseFormat, expected: dict[str, Any]) -> None:
    whole, streamed, deltas = _both(emulators, chat_request("a city", response_format=fmt))
    assert orjson.loads(whole.text) == orjson.loads(streamed.text) == orjson.loads("".join(deltas)) == expected
    assert whole.finish_reason == "stop" and whole.tool_calls is None


def test_schema_violation_comes_back_as_text(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "schema_violation"})
    result = run(emulators, lambda a: a.chat(chat_request(response_format=ResponseFormat("json_schema", SCHEMA))))
    assert result.text == '{"unexpected":true}'  # the gateway's validation refuses it


@pytest.mark.parametrize(("choice", "name"), [(None, "get_weather"), (ToolChoice("tool", "now"), "now"),
                                              (ToolChoice("required"), "get_weather")])
def test_tool_call_chat_and_stream(emulators: BackgroundEmulators, choice: ToolChoice | None, name: str) -> None:
    whole, streamed, deltas = _both(emulators, chat_request("weather?", tools=TOOLS, tool_choice=choice))
    assert deltas == []  # a call is never text
    for result in (whole, streamed):
        assert result.finish_reason == "tool_calls" and result.text == ""
        assert result.tool_calls and [c.name for c in result.tool_calls] == [name]
        assert CALL_ID.fullmatch(result.tool_calls[0].id)  # the API sent none: made up
    assert whole.tool_calls and whole.tool_calls[0].arguments == ({"city": "text", "days": 1} if name != "now" else {})


def test_tool_choice_none_answers_text(emulators: BackgroundEmulators) -> None:
    result = run(emulators, lambda a: a.chat(chat_request("weather?", tools=TOOLS, tool_choice=ToolChoice("none"))))
    assert result.text == GREETING + "weather?" and result.tool_calls is None and result.finish_reason == "stop"


def test_tool_result_goes_back_and_is_answered(emulators: BackgroundEmulators) -> None:
    first = run(emulators, lambda a: a.chat(chat_request("weather?", tools=TOOLS)))
    assert first.tool_calls
    call = first.tool_calls[0]
    messages = [Message("user", "weather?"), Message("assistant", "", tool_calls=[call]),
                Message("tool", "sunny, 21 C", tool_call_id=call.id, name=call.name)]
    request = ChatRequest("gemini-3.5-flash-lite", messages, tools=TOOLS)
    whole, streamed, deltas = _both(emulators, request)
    assert whole.text == streamed.text == "".join(deltas) == "The tool get_weather returned: sunny, 21 C"
    assert whole.finish_reason == "stop" and whole.tool_calls is None


def test_a_result_without_its_call_is_the_providers_invalid_request(emulators: BackgroundEmulators) -> None:
    messages = [Message("user", "x"), Message("tool", "r", tool_call_id="call_x", name="f")]
    with pytest.raises(errors.InvalidRequest) as refused:
        run(emulators, lambda a: a.chat(ChatRequest("gemini-3.5-flash-lite", messages)))
    assert "function response turn" in str(refused.value)


def test_images_arrive_whole(emulators: BackgroundEmulators) -> None:
    message = Message("user", [TextPart("what is this?"), ImagePart(PNG, "image/png")])
    whole, streamed, _ = _both(emulators, ChatRequest("gemini-3.5-flash-lite", [message]))
    assert whole.text == streamed.text == f"I see 1 image (image/png 40 bytes). {GREETING}what is this?"


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize(("model", "thoughts"), [
    # a Gemini 3 model gets the effort as its thinkingLevel, which the emulated thoughts name
    ("gemini-3.5-flash-lite", "Thinking (medium effort) about: why blue. The answer follows."),
    # a Gemini 2.5 id gets the budget (the API routes it to 3.5 Flash-Lite, which still takes one)
    ("gemini-2.5-flash", "Thinking about: why blue. The answer follows."),
])
def test_reasoning_counts_and_thoughts(emulators: BackgroundEmulators, include: bool, model: str,
                                       thoughts: str) -> None:
    request = ChatRequest(model, [Message("system", "Be brief."), Message("user", "why blue")],
                          reasoning=Reasoning("medium", 2048, include_thoughts=include))
    whole, streamed, deltas = _both(emulators, request)
    assert "".join(deltas) == whole.text == streamed.text == GREETING + "why blue"  # thoughts are never text
    words = count_words(thoughts)
    for result in (whole, streamed):
        assert result.reasoning == (thoughts if include else None)
        assert result.usage == Usage(4, 9 + words, None, words)  # output includes the reasoning tokens


def test_a_call_made_while_thinking_goes_back_with_a_signature(emulators: BackgroundEmulators) -> None:
    reasoning = Reasoning("low", 512)
    first = run(emulators, lambda a: a.chat(chat_request("weather?", tools=TOOLS, reasoning=reasoning)))
    assert first.tool_calls and first.finish_reason == "tool_calls"
    call = first.tool_calls[0]
    messages = [Message("user", "weather?"), Message("assistant", "", tool_calls=[call]),
                Message("tool", "rain", tool_call_id=call.id, name=call.name)]
    second = run(emulators, lambda a: a.chat(ChatRequest("gemini-3.5-flash-lite", messages, tools=TOOLS,
                                                         reasoning=reasoning)))
    assert second.text == "The tool get_weather returned: rain"


def test_listing_says_what_models_can_do(emulators: BackgroundEmulators) -> None:
    listed = {m.id: m for m in run(emulators, lambda a: a.list_models())}
    assert listed["gemini-3.8-flash"].features == ["vision", "json_schema", "tools", "reasoning"]
    assert listed["gemini-3.8-flash"].max_output_tokens == 65_536
    assert "gemini-2.5-pro" not in listed  # shut down: no longer listed
    assert listed["gemini-embedding-001"].features is None


# ---- malformed replies: what the emulator never sends, fed to the adapter directly


def _reply(parts: list[Any], finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}]}


@pytest.mark.parametrize(("part", "words"), [
    ({"functionCall": {"args": {}}}, "a functionCall without a name"),
    ({"functionCall": {"name": "get_weather", "args": [1]}}, "whose args are not an object"),
])
def test_malformed_call_is_a_provider_error(emulators: BackgroundEmulators, monkeypatch: pytest.MonkeyPatch,
                                            part: dict[str, Any], words: str) -> None:
    async def fake(*_: Any, **__: Any) -> Any:
        return _reply([part])

    monkeypatch.setattr(GeminiAdapter, "request_json", fake)
    with pytest.raises(errors.ProviderError) as broken:
        run(emulators, lambda a: a.chat(chat_request()))
    assert words in str(broken.value) and type(broken.value) is errors.ProviderError


def test_malformed_call_in_a_stream_after_text_is_an_interruption(emulators: BackgroundEmulators) -> None:
    from workers.providers.gemini import wire
    from workers.providers.http_base import StreamState

    async def feed(adapter: GeminiAdapter) -> errors.LLMCallerError:
        state, extra = StreamState("gem", "m"), wire.CandidateParts()
        adapter._on_chunk(orjson.dumps(_reply([{"text": "Hi "}], "")).decode(), state, extra)
        with pytest.raises(errors.LLMCallerError) as caught:
            adapter._on_chunk(orjson.dumps(_reply([{"functionCall": {"name": ""}}])).decode(), state, extra)
        return caught.value

    failure = run(emulators, feed)
    assert isinstance(failure, errors.StreamInterrupted) and failure.partial_text == "Hi "
    assert "functionCall without a name" in str(failure)


def test_malformed_function_call_finish_is_reported(emulators: BackgroundEmulators,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake(*_: Any, **__: Any) -> Any:
        return _reply([{"text": ""}], "MALFORMED_FUNCTION_CALL")

    monkeypatch.setattr(GeminiAdapter, "request_json", fake)
    result = run(emulators, lambda a: a.chat(chat_request(tools=TOOLS)))
    assert result.finish_reason == "malformed_function_call" and result.tool_calls is None


def test_made_up_ids_differ(emulators: BackgroundEmulators, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake(*_: Any, **__: Any) -> Any:
        return _reply([{"functionCall": {"name": "now"}}, {"functionCall": {"name": "now"}}])

    monkeypatch.setattr(GeminiAdapter, "request_json", fake)
    result = run(emulators, lambda a: a.chat(chat_request(tools=TOOLS)))
    assert result.tool_calls and len({c.id for c in result.tool_calls}) == 2
    assert [c for c in result.tool_calls if c.name == "now"] == result.tool_calls
    assert all(isinstance(c, ToolCall) for c in result.tool_calls)


@pytest.mark.parametrize(("capabilities", "thinking", "features"), [
    (["chat", "chatStream"], True, ["vision", "json_schema", "tools", "reasoning"]),
    (["chat", "chatStream"], None, ["vision", "json_schema", "tools"]),
    (["embed"], True, None),
])
def test_features_from_a_listing(capabilities: list[Any], thinking: Any, features: list[str] | None) -> None:
    assert _features(capabilities, thinking) == features

"""OpenAI adapter, chat beyond text (issue #16): the payload each feature becomes, and the
replies mapped back, against the OpenAI emulator over real HTTP (plain and streamed), plus
malformed provider replies (unreadable tool arguments) as clear errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.features import SCHEMA_VIOLATION, after_tool_result, image_note, sample_instance, thinking_text
from emulators.server import BackgroundEmulators, EmulatorConfig
from shared import errors
from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, Message, TextDelta
from tests.unit.workers.providers.helpers import Recorder, collect, json_response, request, run_with, sse
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.openai.adapter import OpenAIAdapter
from workers.providers.openai.kind import KIND
from workers.providers.openai_chat_parts import JSON_HINT

T = TypeVar("T")
KEY = "sk-unit-openai-features-0123456789"
GREETING = "Hello from the OpenAI emulator. You said: "
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x01" * 40).decode()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"], "additionalProperties": False}
WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
CLOCK = ToolSpec("get_time", None, {"type": "object", "properties": {}})


@pytest.fixture(scope="module")
def emulators() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(ports={"openai": 0}, keys={"openai": KEY})) as running:
        yield running


def run(emulators: BackgroundEmulators, op: Callable[[OpenAIAdapter], Awaitable[T]]) -> T:
    config = ProviderConfig.model_validate({
        "kind": "openai", "base_url": emulators.url("openai") + "/v1", "secret": {"env": "X"},
        "models": [{"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"]}]})

    async def main() -> T:
        client = AiohttpClient(Timeouts(connect_s=2, read_s=5, pool_s=5), max_connections=4)
        try:
            return await op(OpenAIAdapter("oa", config, KEY, client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def chat(emulators: BackgroundEmulators, req: ChatRequest) -> ChatResult:
    return run(emulators, lambda a: a.chat(req))


def stream(emulators: BackgroundEmulators, req: ChatRequest) -> tuple[list[str], ChatResult]:
    async def go(adapter: OpenAIAdapter) -> list[Any]:
        return [item async for item in adapter.stream_chat(req)]

    items = run(emulators, go)
    assert isinstance(items[-1], ChatResult)
    return [i.text for i in items if isinstance(i, TextDelta)], items[-1]


def ask(text: str = "weather in Oslo?", model: str = "gpt-4o-mini", **extra: Any) -> ChatRequest:
    return ChatRequest(model, [Message("user", text)], **extra)


def test_the_kind_declares_every_sampling_parameter() -> None:
    assert KIND.sampling == {"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}


# ---------------------------------------------------------------- payload shapes


def test_payload_carries_each_feature_in_openai_shape() -> None:
    rec = Recorder(json_response(200, {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}))
    req = request(
        tools=[WEATHER, CLOCK], tool_choice=ToolChoice("tool", "get_weather"),
        response_format=ResponseFormat("json_schema", SCHEMA, "trip", True),
        reasoning=Reasoning("high", 8000), sampling=Sampling(stop=["END"], top_p=0.9, seed=3, presence_penalty=0.5,
                                                             frequency_penalty=-0.5),
    )
    run_with(OpenAIAdapter, rec, lambda a: a.chat(req))
    body = rec.body()
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": WEATHER.parameters}},
        {"type": "function", "function": {"name": "get_time", "parameters": CLOCK.parameters}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "trip", "schema": SCHEMA, "strict": True}}
    assert body["reasoning_effort"] == "high"
    assert (body["stop"], body["top_p"], body["seed"], body["presence_penalty"], body["frequency_penalty"]) == (
        ["END"], 0.9, 3, 0.5, -0.5)


def test_payload_messages_with_parts_tool_calls_and_results() -> None:
    rec = Recorder(json_response(200, {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}))
    messages = [
        Message("user", [TextPart("look"), ImagePart(PNG, "image/png")]),
        Message("assistant", "", tool_calls=[ToolCall("call_1", "get_weather", {"city": "Oslo"})]),
        Message("tool", "sunny", tool_call_id="call_1", name="get_weather"),
    ]
    run_with(OpenAIAdapter, rec, lambda a: a.chat(ChatRequest("m-1", messages, tool_choice=ToolChoice("auto"))))
    body = rec.body()
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    assert body["tool_choice"] == "auto"


def test_json_mode_says_json_when_the_conversation_does_not() -> None:
    rec = Recorder(json_response(200, {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}))
    run_with(OpenAIAdapter, rec, lambda a: a.chat(request(response_format=ResponseFormat("json_object"))))
    assert rec.body()["response_format"] == {"type": "json_object"}
    assert rec.body()["messages"][0] == {"role": "system", "content": JSON_HINT}


def test_a_plain_chat_payload_is_unchanged() -> None:
    rec = Recorder(json_response(200, {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}))
    run_with(OpenAIAdapter, rec, lambda a: a.chat(request()))
    assert set(rec.body()) == {"model", "messages"}


# ---------------------------------------------------------------- against the emulator


def test_usage_details_and_reasoning(emulators: BackgroundEmulators) -> None:
    plain = chat(emulators, ask("hi"))
    assert (plain.usage.cached_input_tokens, plain.usage.reasoning_tokens) == (0, 0)
    result = chat(emulators, ask(model="gpt-6-luna", max_tokens=500, reasoning=Reasoning("low", 1024, True)))
    thought = len(thinking_text("weather in Oslo?").split())
    assert result.usage.reasoning_tokens == thought
    assert result.usage.output_tokens == thought + len(result.text.split())
    assert result.reasoning is None  # OpenAI chat completions never return the thinking text
    _, streamed = stream(emulators, ask(model="gpt-6-luna", reasoning=Reasoning("low", 1024)))
    assert streamed.usage.reasoning_tokens == thought


def test_reasoning_effort_on_a_model_without_it_is_an_invalid_request(emulators: BackgroundEmulators) -> None:
    with pytest.raises(errors.InvalidRequest, match="reasoning_effort"):
        chat(emulators, ask(model="gpt-4o", reasoning=Reasoning("low", 1024)))


def test_stop_sequence_is_passed(emulators: BackgroundEmulators) -> None:
    result = chat(emulators, ask("hi", sampling=Sampling(stop=[" the "], seed=1)))
    assert (result.text, result.finish_reason) == ("Hello from", "stop")


@pytest.mark.parametrize("streamed", [False, True])
def test_structured_output_returns_the_json_text(emulators: BackgroundEmulators, streamed: bool) -> None:
    req = ask(response_format=ResponseFormat("json_schema", SCHEMA, "trip"), stream=streamed)
    result = stream(emulators, req)[1] if streamed else chat(emulators, req)
    assert json.loads(result.text) == sample_instance(SCHEMA)
    assert result.finish_reason == "stop"


def test_json_object_and_the_schema_violation_fault(emulators: BackgroundEmulators) -> None:
    result = chat(emulators, ask("hi", response_format=ResponseFormat("json_object")))
    assert result.text == '{"reply":"' + GREETING + 'hi"}'
    with EmulatorControl(emulators.url("openai")) as control:
        control.add_faults({"mode": "schema_violation"})
    violated = chat(emulators, ask(response_format=ResponseFormat("json_schema", SCHEMA, "trip")))
    assert violated.text == '{"unexpected":true}' and SCHEMA_VIOLATION == {"unexpected": True}


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_call_round_trip(emulators: BackgroundEmulators, streamed: bool) -> None:
    first_req = ask(tools=[CLOCK, WEATHER], tool_choice=ToolChoice("tool", "get_weather"), stream=streamed)
    texts, first = stream(emulators, first_req) if streamed else ([], chat(emulators, first_req))
    assert texts == []  # tool-call fragments are never sent as text
    assert first.finish_reason == "tool_calls" and first.text == ""
    assert first.tool_calls is not None and len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert (call.name, call.arguments) == ("get_weather", {"city": "text"}) and call.id.startswith("call_")
    follow = ChatRequest("gpt-4o-mini", [Message("user", "weather in Oslo?"),
                                         Message("assistant", "", tool_calls=first.tool_calls),
                                         Message("tool", "sunny, 21 C", tool_call_id=call.id, name=call.name)],
                         tools=[CLOCK, WEATHER], stream=streamed)
    final = stream(emulators, follow)[1] if streamed else chat(emulators, follow)
    assert (final.text, final.finish_reason, final.tool_calls) == (
        after_tool_result("get_weather", "sunny, 21 C"), "stop", None)


@pytest.mark.parametrize("streamed", [False, True])
def test_image_arrives_whole(emulators: BackgroundEmulators, streamed: bool) -> None:
    req = ChatRequest("gpt-4o", [Message("user", [TextPart("what is it"), ImagePart(PNG, "image/png")])],
                      stream=streamed)
    result = stream(emulators, req)[1] if streamed else chat(emulators, req)
    assert result.text == image_note([("image/png", len(base64.b64decode(PNG)))]) + GREETING + "what is it"


# ---------------------------------------------------------------- malformed replies


def _completion(tool_calls: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return {"choices": [{"message": message, "finish_reason": "tool_calls"}]}


@pytest.mark.parametrize(("calls", "says"), [
    ([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}], "'f'"),
    ([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}], "not a JSON object"),
    ([{"id": "c1", "type": "function", "function": {"arguments": "{}"}}], "without a function name"),
    ({"id": "c1"}, "not a list"),
])
def test_unreadable_tool_calls_are_provider_errors(calls: Any, says: str) -> None:
    rec = Recorder(json_response(200, _completion(calls)))
    with pytest.raises(errors.ProviderError, match=says):
        run_with(OpenAIAdapter, rec, lambda a: a.chat(request(tools=[WEATHER])))


def test_a_call_without_an_id_gets_one_and_function_call_means_tool_calls() -> None:
    body = _completion([{"type": "function", "function": {"name": "f", "arguments": ""}}])
    body["choices"][0]["finish_reason"] = "function_call"
    result = run_with(OpenAIAdapter, Recorder(json_response(200, body)), lambda a: a.chat(request(tools=[WEATHER])))
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls is not None and result.tool_calls[0].arguments == {}
    assert len(result.tool_calls[0].id) == len("call_") + 12


def test_streamed_fragments_with_broken_arguments_are_a_provider_error() -> None:
    def piece(**fields: Any) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **fields}]}, "finish_reason": None}]}

    body = sse(piece(id="c1", function={"name": "f", "arguments": ""}), piece(function={"arguments": '{"a":'}),
               {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]")
    rec = Recorder(httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    items, error = run_with(OpenAIAdapter, rec, lambda a: collect(a.stream_chat(request(tools=[WEATHER]))))
    assert not [i for i in items if isinstance(i, TextDelta)]
    assert isinstance(error, errors.ProviderError) and "'f'" in str(error)


def test_a_refusal_is_the_reply_text() -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    body = {"choices": [{"message": message, "finish_reason": "stop"}]}
    fmt = ResponseFormat("json_schema", SCHEMA, "trip")
    result = run_with(OpenAIAdapter, Recorder(json_response(200, body)), lambda a: a.chat(request(response_format=fmt)))
    assert (result.text, result.finish_reason, result.tool_calls) == ("I can't help with that.", "stop", None)

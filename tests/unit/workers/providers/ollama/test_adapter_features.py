"""Ollama adapter beyond plain text (issue #16), against the Ollama emulator in process:
sampling options, structured output, tool calls (and follow-ups), images and reasoning,
each streamed and not, and the malformed answers a broken server could send."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from emulators.faults import FaultSpec
from emulators.features import SCHEMA_VIOLATION, after_tool_result, sample_instance, thinking_text
from emulators.ollama_api import OllamaEmulator
from shared import errors
from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.models import ChatRequest, ChatResult, Message, TextDelta
from tests.unit.workers.providers.helpers import HttpxTestClient, Recorder, collect, config, json_response, run_with
from tests.unit.workers.providers.ollama.test_adapter import line, ndjson
from workers.providers.base import ProviderAdapter
from workers.providers.ollama.adapter import OllamaAdapter

T = TypeVar("T")
CHAT_MODEL, FEATURE_MODEL, PLAIN_MODEL = "llama3.2:3b", "qwen3-vl:4b", "gemma3:1b"
WEATHER = ToolSpec("get_weather", "The weather in a city.", {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"]})
CLOCK = ToolSpec("get_time", None, {"type": "object", "properties": {"zone": {"type": "string"}}})
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {
    "type": "string"}}, "score": {"type": "number"}}, "required": ["name", "tags", "score"]}
# A 1x1 PNG.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


class _Recording(httpx.ASGITransport):
    """The emulator's ASGI app as a transport, keeping each request body the adapter sent."""

    def __init__(self, emulator: OllamaEmulator) -> None:
        super().__init__(app=emulator.app)
        self.bodies: list[Any] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(orjson.loads(request.content) if request.content else None)
        return await super().handle_async_request(request)


def on_emulator(op: Callable[[ProviderAdapter], Awaitable[T]], emulator: OllamaEmulator | None = None
                ) -> tuple[T, list[Any]]:
    """``op`` on an adapter talking to a fresh emulator; its result and the bodies sent."""
    emu = emulator or OllamaEmulator()
    transport = _Recording(emu)

    async def main() -> T:
        async with httpx.AsyncClient(transport=transport) as http:
            adapter = OllamaAdapter("prov", config("ollama"), None, HttpxTestClient(http))
            return await op(adapter)

    return asyncio.run(main()), transport.bodies


def chat(req: ChatRequest, emulator: OllamaEmulator | None = None) -> tuple[ChatResult, dict[str, Any]]:
    result, bodies = on_emulator(lambda a: a.chat(req), emulator)
    return result, bodies[-1]


def stream(req: ChatRequest, emulator: OllamaEmulator | None = None) -> tuple[list[Any], BaseException | None]:
    return on_emulator(lambda a: collect(a.stream_chat(req)), emulator)[0]


def ask(model: str = CHAT_MODEL, text: str = "weather in Paris?", **extra: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", text)], **extra)


def finished(items: list[Any]) -> ChatResult:
    assert isinstance(items[-1], ChatResult)
    return items[-1]


# ---------------------------------------------------------------- sampling and finish reasons


def test_sampling_params_go_in_options_under_their_own_names() -> None:
    sampling = Sampling(stop=["\n\n", "END"], top_p=0.9, seed=7, presence_penalty=0.5, frequency_penalty=0.25)
    result, body = chat(ask(max_tokens=4, temperature=0.2, sampling=sampling))
    assert body["options"] == {"num_predict": 4, "temperature": 0.2, "stop": ["\n\n", "END"], "top_p": 0.9,
                               "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25}
    assert result.finish_reason == "length" and result.text == "Hello from the Ollama"
    assert result.usage.output_tokens == 4 and result.usage.cached_input_tokens is None


def test_a_plain_chat_sends_what_it_always_sent() -> None:
    _, body = chat(ask())
    assert body == {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "weather in Paris?"}],
                    "stream": False}


# ---------------------------------------------------------------- structured output


@pytest.mark.parametrize("streamed", [False, True])
def test_a_json_schema_is_the_format_and_the_reply_is_json_text(streamed: bool) -> None:
    req = ask(response_format=ResponseFormat("json_schema", SCHEMA, "person"))
    if streamed:
        items, error = stream(req)
        assert error is None
        result = finished(items)
        assert "".join(i.text for i in items if isinstance(i, TextDelta)) == result.text
    else:
        result, body = chat(req)
        assert body["format"] == SCHEMA
    assert orjson.loads(result.text) == sample_instance(SCHEMA) and result.finish_reason == "stop"


def test_json_object_is_format_json() -> None:
    result, body = chat(ask(response_format=ResponseFormat("json_object")))
    assert body["format"] == "json"
    assert orjson.loads(result.text) == {"reply": "Hello from the Ollama emulator. You said: weather in Paris?"}


def test_a_schema_violation_reaches_the_caller_as_text() -> None:
    emu = OllamaEmulator()
    emu.faults.add([FaultSpec(mode="schema_violation")])
    result, _ = chat(ask(response_format=ResponseFormat("json_schema", SCHEMA)), emu)
    assert orjson.loads(result.text) == SCHEMA_VIOLATION


# ---------------------------------------------------------------- tools


@pytest.mark.parametrize("streamed", [False, True])
def test_the_model_calls_a_tool(streamed: bool) -> None:
    req = ask(tools=[WEATHER, CLOCK], tool_choice=ToolChoice("auto"))
    if streamed:
        items, error = stream(req)
        assert error is None and not [i for i in items if isinstance(i, TextDelta)]  # calls never go as text
        result = finished(items)
    else:
        result, body = chat(req)
        assert body["tools"] == [
            {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                              "parameters": WEATHER.parameters}},
            {"type": "function", "function": {"name": "get_time", "description": "",
                                              "parameters": CLOCK.parameters}}]
    assert result.finish_reason == "tool_calls" and result.text == ""
    assert result.tool_calls is not None and len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == "get_weather" and call.arguments == {"city": "text", "days": 1}
    assert re.fullmatch(r"call_[0-9a-z]+", call.id)


def test_a_tool_result_goes_back_with_its_name_and_call_id() -> None:
    messages = [Message("user", "weather in Paris?"),
                Message("assistant", "", tool_calls=[ToolCall("call_1", "get_weather", {"city": "Paris"})]),
                Message("tool", "18 C, sunny", tool_call_id="call_1", name="get_weather")]
    result, body = chat(ChatRequest(CHAT_MODEL, messages, tools=[WEATHER]))
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "call_1", "function": {"index": 0, "name": "get_weather",
                                                      "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "18 C, sunny", "tool_name": "get_weather", "tool_call_id": "call_1"}]
    assert result.text == after_tool_result("get_weather", "18 C, sunny") and result.finish_reason == "stop"
    assert result.tool_calls is None


def test_tool_choice_none_offers_no_tools() -> None:
    result, body = chat(ask(tools=[WEATHER], tool_choice=ToolChoice("none")))
    assert "tools" not in body and result.tool_calls is None and result.text.startswith("Hello from")


@pytest.mark.parametrize(("choice", "said"), [(ToolChoice("required"), "at least one tool"),
                                              (ToolChoice("tool", "get_weather"), "the tool 'get_weather'")])
def test_a_forced_tool_choice_is_unsupported_before_any_request(choice: ToolChoice, said: str) -> None:
    rec = Recorder(json_response(200, {}))
    with pytest.raises(errors.Unsupported, match=f"cannot force a call to {said}.*no tool_choice"):
        run_with(OllamaAdapter, rec, lambda a: a.chat(ask(tools=[WEATHER], tool_choice=choice)))
    assert rec.requests == []


def test_tools_on_a_model_without_them_are_unsupported() -> None:
    with pytest.raises(errors.Unsupported, match='"gemma3:1b" does not support tools'):
        chat(ask(PLAIN_MODEL, tools=[WEATHER]))


def _answer(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "message": {"role": "assistant", "content": "", **message}, "done": True,
            "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2, **extra}


def test_a_call_without_an_id_gets_one() -> None:
    answer = _answer({"tool_calls": [{"function": {"name": "get_time", "arguments": {}}},
                                     {"function": {"index": 1, "name": "get_time", "arguments": {"zone": "UTC"}}}]})
    result = run_with(OllamaAdapter, Recorder(json_response(200, answer)), lambda a: a.chat(ask(tools=[CLOCK])))
    assert result.tool_calls is not None
    ids = [c.id for c in result.tool_calls]
    assert all(re.fullmatch(r"call_[0-9a-f]{12}", i) for i in ids) and ids[0] != ids[1]
    assert [c.arguments for c in result.tool_calls] == [{}, {"zone": "UTC"}]


@pytest.mark.parametrize("calls", [{"function": {"name": "f"}}, [{"function": {"name": "f", "arguments": "{}"}}],
                                   [{"function": {"arguments": {}}}], ["f"]])
def test_malformed_tool_calls_are_a_clear_provider_error(calls: Any) -> None:
    answer = _answer({"tool_calls": calls})
    with pytest.raises(errors.ProviderError, match=r"prov returned (unreadable tool calls|a tool call without)"):
        run_with(OllamaAdapter, Recorder(json_response(200, answer)), lambda a: a.chat(ask(tools=[CLOCK])))


def test_a_malformed_tool_call_in_a_stream_breaks_it_clearly() -> None:
    bad = {"model": CHAT_MODEL, "done": False, "message": {
        "role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]}}
    body = ndjson(orjson.dumps(bad) + b"\n", line(done=True, done_reason="stop"))
    items, error = run_with(OllamaAdapter, Recorder(body), lambda a: collect(a.stream_chat(ask(tools=[CLOCK]))))
    assert items == [] and isinstance(error, errors.ProviderError) and not isinstance(error, errors.StreamInterrupted)
    assert "prov sent a tool call without a name or with arguments that are not an object" in error.message


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("streamed", [False, True])
def test_images_go_as_bare_base64_and_arrive_whole(streamed: bool) -> None:
    message = Message("user", [TextPart("What is this?"), ImagePart(PNG, "image/png"), TextPart("Be brief.")])
    req = ChatRequest(FEATURE_MODEL, [message])
    size = len(base64.b64decode(PNG))
    if streamed:
        result = finished(stream(req)[0])
    else:
        result, body = chat(req)
        assert body["messages"] == [{"role": "user", "content": "What is this?\n\nBe brief.", "images": [PNG]}]
    assert result.text.startswith(f"I see 1 image (image/png {size} bytes). Hello from")


def test_an_image_that_is_not_base64_is_the_servers_400() -> None:
    message = Message("user", [TextPart("What is this?"), ImagePart("not base64!", "image/png")])
    with pytest.raises(errors.InvalidRequest, match="illegal base64 data at input byte 3"):
        chat(ChatRequest(FEATURE_MODEL, [message]))


# ---------------------------------------------------------------- reasoning


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("include", [False, True])
def test_reasoning_is_think_with_the_effort_level(streamed: bool, include: bool) -> None:
    req = ask(FEATURE_MODEL, "why is the sky blue", reasoning=Reasoning("high", 8192, include))
    if streamed:
        items, error = stream(req)
        assert error is None
        result = finished(items)
        assert "".join(i.text for i in items if isinstance(i, TextDelta)) == result.text  # no thinking as text
    else:
        result, body = chat(req)
        assert body["think"] == "high"
    thought = thinking_text("why is the sky blue")
    assert result.reasoning == (thought if include else None)
    assert result.text == "Hello from the Ollama emulator. You said: why is the sky blue"
    assert result.usage.reasoning_tokens is None  # Ollama does not count them apart
    assert result.usage.output_tokens == len(result.text.split()) + len(thought.split())


def test_a_thinking_models_own_thoughts_are_not_returned_unasked() -> None:
    result, body = chat(ask(FEATURE_MODEL))  # thinks by default, as Ollama's thinking models do
    assert "think" not in body and result.reasoning is None and result.text.startswith("Hello from")


def test_reasoning_on_a_model_that_cannot_think_is_unsupported() -> None:
    with pytest.raises(errors.Unsupported, match=r'"llama3\.2:3b" does not support thinking'):
        chat(ask(reasoning=Reasoning("low", 1024)))


def test_every_feature_at_once_streamed() -> None:
    message = Message("user", [TextPart("describe"), ImagePart(PNG, "image/png")])
    req = ChatRequest(FEATURE_MODEL, [message], tools=[WEATHER], reasoning=Reasoning("medium", 4096, True),
                      stream=True)
    result = finished(stream(req)[0])
    assert result.finish_reason == "tool_calls" and result.tool_calls and result.tool_calls[0].name == "get_weather"
    assert result.reasoning == thinking_text("describe")

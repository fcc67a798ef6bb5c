"""Anthropic adapter beyond plain text (issue #16), against the Anthropic emulator: sampling,
usage, structured output (native and forced tool), tool calls and their results, images,
thinking; plain and streamed; and malformed replies as clear errors."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import orjson
import pytest

from emulators.control import EmulatorControl
from emulators.features import after_tool_result, image_note, sample_instance, thinking_text
from emulators.server import BackgroundEmulators, EmulatorConfig
from shared import errors
from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, Message, TextDelta, Usage
from tests.unit.workers.providers.helpers import Recorder, collect, config, json_response, named, run_with
from tests.unit.workers.providers.helpers import stream_response as sse_response
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.anthropic.adapter import AnthropicAdapter
from workers.providers.anthropic.listing import card_facts
from workers.providers.anthropic.wire import JSON_TOOL, native_json

T = TypeVar("T")
KEY = "sk-ant-test-features-0123456789"
MODEL = "claude-sonnet-4-6"  # the shipped "smart" model: adaptive thinking
BUDGETED = "claude-haiku-4-5"  # a model that takes only budgeted thinking
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"], "additionalProperties": False}
WEATHER = ToolSpec("get_weather", "The weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 60).decode()


@pytest.fixture(scope="module")
def emulators() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(ports={"anthropic": 0}, keys={"anthropic": KEY})) as running:
        yield running


@pytest.fixture
def control(emulators: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulators.url("anthropic")) as ctl:
        ctl.reset()
        yield ctl
        ctl.reset()


def run(emulators: BackgroundEmulators, op: Callable[[AnthropicAdapter], Awaitable[T]], **options: str) -> T:
    cfg = ProviderConfig.model_validate({
        "kind": "anthropic", "base_url": emulators.url("anthropic"), "secret": {"env": "X"},
        "models": [{"id": m, "capabilities": ["chat", "chatStream"]} for m in (MODEL, BUDGETED)],
        "options": options})

    async def main() -> T:
        client = AiohttpClient(Timeouts(connect_s=2, read_s=5, pool_s=5), max_connections=4)
        try:
            return await op(AnthropicAdapter("ant", cfg, KEY, client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def ask(emulators: BackgroundEmulators, req: ChatRequest, stream: bool, **options: str) -> tuple[ChatResult, str]:
    """The result and, for a stream, the text its deltas carried (checked to match the result)."""
    if not stream:
        return run(emulators, lambda a: a.chat(req), **options), ""
    items, error = run(emulators, lambda a: collect(a.stream_chat(req)), **options)
    if error is not None:
        raise error
    streamed = "".join(i.text for i in items if isinstance(i, TextDelta))
    result = items[-1]
    assert isinstance(result, ChatResult) and streamed == result.text
    return result, streamed


def chat(*messages: Message, model: str = MODEL, **extra: Any) -> ChatRequest:
    return ChatRequest(model, list(messages) or [Message("user", "what is the weather in Paris")], **extra)


def payload(req: ChatRequest, **options: str) -> dict[str, Any]:
    def build(adapter: AnthropicAdapter) -> Awaitable[dict[str, Any]]:
        async def inner() -> dict[str, Any]:
            return adapter.messages_payload(req, stream=False)
        return inner()
    cfg = config("anthropic", options=options) if options else None
    return run_with(AnthropicAdapter, Recorder(json_response(200, {})), build, cfg=cfg)  # type: ignore[arg-type]


BOTH = pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])


# ---- (1) sampling, usage, finish reasons -------------------------------------------------


@BOTH
def test_a_stop_sequence_cuts_the_answer_and_finishes_stop(emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(Message("user", "one two three"), sampling=Sampling(stop=["emulator"], top_p=0.5))
    assert payload(req)["stop_sequences"] == ["emulator"] and payload(req)["top_p"] == 0.5
    result, _ = ask(emulators, req, stream)
    assert result.text == "Hello from the Anthropic " and result.finish_reason == "stop"


def test_temperature_with_top_p_is_anthropics_clear_refusal(emulators: BackgroundEmulators) -> None:
    req = chat(temperature=0.3, sampling=Sampling(top_p=0.9))
    with pytest.raises(errors.InvalidRequest, match="`temperature` and `top_p` cannot both be specified"):
        run(emulators, lambda a: a.chat(req))


def test_usage_counts_cache_reads_and_writes_in_the_input_and_reports_thinking() -> None:
    body = {"type": "message", "model": "m", "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5,
                      "output_tokens": 7, "output_tokens_details": {"thinking_tokens": 3}}}
    result = run_with(AnthropicAdapter, Recorder(json_response(200, body)), lambda a: a.chat(chat()))
    assert result.usage == Usage(45, 7, 30, 3)


def test_a_plain_chat_payload_is_unchanged() -> None:
    req = chat(Message("system", "Be brief."), Message("user", "hi"), Message("assistant", "yo"), Message("user", "x"))
    assert payload(req) == {"model": MODEL, "max_tokens": 1024, "system": "Be brief.", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "x"}]}


# ---- (2) structured output ----------------------------------------------------------------


@pytest.mark.parametrize(("model", "setting", "native"), [
    ("claude-sonnet-4-5", "auto", True), ("claude-haiku-4-5-20251001", "auto", True),
    ("claude-opus-4-6", "auto", True), ("claude-sonnet-5", "auto", True),
    ("claude-opus-4-1-20250805", "auto", False), ("claude-sonnet-4-20250514", "auto", False),
    ("claude-3-7-sonnet-20250219", "auto", False), ("my-proxy-model", "auto", False),
    ("my-proxy-model", "native", True), ("claude-sonnet-4-5", "tool", False),
])
def test_which_models_get_native_structured_output(model: str, setting: str, native: bool) -> None:
    assert native_json(model, setting) is native


@BOTH
@pytest.mark.parametrize("setting", ["auto", "tool"])
def test_json_schema_answers_an_instance(emulators: BackgroundEmulators, stream: bool, setting: str) -> None:
    req = chat(response_format=ResponseFormat("json_schema", SCHEMA))
    sent = payload(req, structured_output=setting)
    if setting == "auto":
        assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}} and "tools" not in sent
    else:
        assert sent["tool_choice"] == {"type": "tool", "name": JSON_TOOL} and sent["tools"][0]["input_schema"] == SCHEMA
    result, _ = ask(emulators, req, stream, structured_output=setting)
    assert orjson.loads(result.text) == sample_instance(SCHEMA)
    assert result.finish_reason == "stop" and result.tool_calls is None


@BOTH
def test_json_object_goes_through_a_permissive_tool(emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(response_format=ResponseFormat("json_object"))
    assert payload(req)["tools"][0]["input_schema"] == {"type": "object"}
    result, _ = ask(emulators, req, stream)
    assert orjson.loads(result.text) == {} and result.finish_reason == "stop"


@BOTH
@pytest.mark.parametrize("setting", ["auto", "tool"])
def test_schema_violation_comes_back_as_text(emulators: BackgroundEmulators, control: EmulatorControl,
                                             stream: bool, setting: str) -> None:
    control.add_faults({"mode": "schema_violation"})
    result, _ = ask(emulators, chat(response_format=ResponseFormat("json_schema", SCHEMA)), stream,
                    structured_output=setting)
    assert orjson.loads(result.text) == {"unexpected": True}


def test_a_non_object_schema_without_native_output_is_refused_before_the_call() -> None:
    req = chat(response_format=ResponseFormat("json_schema", {"type": "array", "items": {"type": "string"}}))
    with pytest.raises(errors.Unsupported, match="object at its root"):
        payload(req, structured_output="tool")


# ---- (3) tool calls -------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize(("choice", "wire"), [
    (None, None), (ToolChoice("auto"), {"type": "auto"}), (ToolChoice("required"), {"type": "any"}),
    (ToolChoice("tool", "get_weather"), {"type": "tool", "name": "get_weather"}),
])
def test_a_tool_call_comes_back_parsed(emulators: BackgroundEmulators, stream: bool, choice: ToolChoice | None,
                                       wire: dict[str, Any] | None) -> None:
    other = ToolSpec("noop", None, {"type": "object", "properties": {}})
    req = chat(tools=[WEATHER, other] if choice is None or choice.mode != "tool" else [other, WEATHER],
               tool_choice=choice)
    sent = payload(req)
    assert sent.get("tool_choice") == wire
    assert {"name": "noop", "input_schema": other.parameters} in sent["tools"]
    result, streamed = ask(emulators, req, stream)
    assert streamed == "" and result.text == "" and result.finish_reason == "tool_calls"
    assert result.tool_calls is not None and len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.id.startswith("toolu_") and (call.name, call.arguments) == ("get_weather", {"city": "text"})


@BOTH
def test_tool_choice_none_answers_in_text(emulators: BackgroundEmulators, stream: bool) -> None:
    result, _ = ask(emulators, chat(tools=[WEATHER], tool_choice=ToolChoice("none")), stream)
    assert result.text.startswith("Hello from the Anthropic emulator") and result.tool_calls is None


def follow_up() -> list[Message]:
    calls = [ToolCall("toolu_a", "get_weather", {"city": "Paris"}),
             ToolCall("toolu_b", "get_weather", {"city": "Oslo"})]
    return [Message("user", "weather in Paris and Oslo?"), Message("assistant", "Let me look.", tool_calls=calls),
            Message("tool", "Sunny, 21 C", tool_call_id="toolu_a", name="get_weather"),
            Message("tool", "Rain, 9 C", tool_call_id="toolu_b", name="get_weather")]


@BOTH
def test_tool_results_go_back_in_one_user_turn(emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(*follow_up(), tools=[WEATHER])
    assert payload(req)["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "Sunny, 21 C"},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": "Rain, 9 C"}]}]
    result, _ = ask(emulators, req, stream)
    assert result.text == after_tool_result("get_weather", "Sunny, 21 C") and result.finish_reason == "stop"


@BOTH
def test_call_ids_from_elsewhere_are_made_acceptable_the_same_way_in_call_and_result(
        emulators: BackgroundEmulators, stream: bool) -> None:
    calls = [ToolCall("fc.7/a b", "get_weather", {"city": "Paris"})]
    req = chat(Message("user", "weather?"), Message("assistant", "", tool_calls=calls),
               Message("tool", "Sunny", tool_call_id="fc.7/a b", name="get_weather"), tools=[WEATHER])
    sent = payload(req)["messages"]
    assert sent[1]["content"][0]["id"] == sent[2]["content"][0]["tool_use_id"] == "fc_7_a_b"
    result, _ = ask(emulators, req, stream)
    assert result.text == after_tool_result("get_weather", "Sunny")


def test_a_user_message_after_tool_results_joins_their_turn() -> None:
    req = chat(*follow_up(), Message("user", "and tomorrow?"), tools=[WEATHER])
    last = payload(req)["messages"][-1]
    assert [b["type"] for b in last["content"]] == ["tool_result", "tool_result", "text"]


# ---- (4) images -----------------------------------------------------------------------------


@BOTH
def test_an_image_arrives_whole(emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(Message("user", [TextPart("what is this?"), ImagePart(PNG, "image/png")]))
    assert payload(req)["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    result, _ = ask(emulators, req, stream)
    assert result.text.startswith(image_note([("image/png", 68)]) + "Hello from the Anthropic emulator")


def test_a_bad_image_is_anthropics_invalid_request(emulators: BackgroundEmulators) -> None:
    req = chat(Message("user", [ImagePart("not base64!", "image/png")]))
    with pytest.raises(errors.InvalidRequest, match="not valid base64"):
        run(emulators, lambda a: a.chat(req))


# ---- (5) reasoning --------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("include", [True, False])
def test_thinking_is_asked_for_counted_and_shown_only_on_request(emulators: BackgroundEmulators, stream: bool,
                                                                 include: bool) -> None:
    req = chat(Message("user", "why is the sky blue"), max_tokens=100, model=BUDGETED,
               reasoning=Reasoning("medium", 2048, include_thoughts=include))
    sent = payload(req)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and sent["max_tokens"] > 2048
    assert "output_config" not in sent  # Haiku 4.5 takes no effort
    result, _ = ask(emulators, req, stream)
    thought = thinking_text("why is the sky blue")
    assert result.reasoning == (thought if include else None)
    assert result.usage.reasoning_tokens == len(thought.split())
    assert result.text.startswith("Hello from the Anthropic emulator")


@BOTH
@pytest.mark.parametrize("include", [True, False])
def test_adaptive_thinking_carries_the_effort_on_the_models_that_take_it(
        emulators: BackgroundEmulators, stream: bool, include: bool) -> None:
    req = chat(Message("user", "why is the sky blue"), max_tokens=100,
               reasoning=Reasoning("low", 1024, include_thoughts=include))
    sent = payload(req)
    assert sent["thinking"] == ({"type": "adaptive", "display": "summarized"} if include else {"type": "adaptive"})
    assert sent["output_config"] == {"effort": "low"} and sent["max_tokens"] > 1024
    result, _ = ask(emulators, req, stream)
    thought = thinking_text("why is the sky blue", "low")  # the emulator thought adaptively, at low effort
    assert result.reasoning == (thought if include else None)
    assert result.usage.reasoning_tokens == len(thought.split())


@BOTH
def test_adaptive_thinking_and_native_structured_output_share_output_config(
        emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(response_format=ResponseFormat("json_schema", SCHEMA), reasoning=Reasoning("high", 16384))
    sent = payload(req)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"}
    result, _ = ask(emulators, req, stream)
    assert orjson.loads(result.text) == sample_instance(SCHEMA)


@BOTH
def test_a_tool_follow_up_goes_without_thinking(emulators: BackgroundEmulators, stream: bool) -> None:
    req = chat(*follow_up(), tools=[WEATHER], reasoning=Reasoning("low", 1024))
    assert "thinking" not in payload(req)
    result, _ = ask(emulators, req, stream)
    assert result.text == after_tool_result("get_weather", "Sunny, 21 C")


# ---- malformed replies ----------------------------------------------------------------------


@pytest.mark.parametrize("block", [
    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": "not an object"},
    {"type": "tool_use", "name": "f", "input": {}},
])
def test_an_unreadable_tool_block_is_a_provider_error(block: dict[str, Any]) -> None:
    body = {"type": "message", "model": "m", "content": [block], "stop_reason": "tool_use", "usage": {}}
    with pytest.raises(errors.ProviderError, match=r"prov returned .*tool"):
        run_with(AnthropicAdapter, Recorder(json_response(200, body)), lambda a: a.chat(chat(tools=[WEATHER])))


def test_broken_streamed_tool_arguments_are_a_provider_error() -> None:
    frames = b"".join([
        named("message_start", {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 1}}}),
        named("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        named("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": '{"city": "Par'}}),
        named("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        named("message_stop", {"type": "message_stop"}),
    ])
    items, error = run_with(AnthropicAdapter, Recorder(lambda _: sse_response(frames)),
                            lambda a: collect(a.stream_chat(chat(tools=[WEATHER]))))
    assert items == [] and isinstance(error, errors.ProviderError)
    assert "tool-call arguments for get_weather that are not valid JSON" in error.message


@pytest.mark.parametrize("extra", [
    {"tools": [WEATHER], "tool_choice": ToolChoice("required")},
    {"response_format": ResponseFormat("json_object")},
])
def test_thinking_with_a_forced_tool_is_refused_before_the_call(extra: dict[str, Any]) -> None:
    with pytest.raises(errors.Unsupported, match="thinking cannot be combined with a forced tool call"):
        payload(chat(reasoning=Reasoning("low", 1024), **extra))


# ---- discovery ------------------------------------------------------------------------------


def test_the_listing_says_what_each_model_can_do(emulators: BackgroundEmulators) -> None:
    models = run(emulators, lambda a: a.list_models())
    assert [(m.id, m.features, m.context_length, m.max_output_tokens) for m in models] == [
        (MODEL, ["vision", "json_schema", "tools", "reasoning"], 1_000_000, 128_000),
        ("claude-haiku-4-5", ["vision", "json_schema", "tools", "reasoning"], 200_000, 64_000)]


def test_a_model_with_only_adaptive_thinking_is_listed_with_reasoning() -> None:
    card = {"type": "model", "id": "claude-opus-4-7", "capabilities": {
        "image_input": {"supported": True}, "structured_outputs": {"supported": True},
        "thinking": {"supported": True, "types": {"enabled": {"supported": False},
                                                  "adaptive": {"supported": True}}}}}
    assert card_facts(card).features == ["vision", "json_schema", "tools", "reasoning"]


def test_a_listed_model_without_native_json_gets_the_tool_route() -> None:
    card = {"type": "model", "id": MODEL, "capabilities": {
        "image_input": {"supported": False}, "structured_outputs": {"supported": False},
        "thinking": {"supported": True, "types": {"enabled": {"supported": False}}}}}
    listing = json_response(200, {"data": [card, {"type": "model", "id": "old"}], "has_more": False})

    async def op(adapter: AnthropicAdapter) -> tuple[list[Any], dict[str, Any]]:
        models = await adapter.list_models()
        return models, adapter.messages_payload(chat(response_format=ResponseFormat("json_schema", SCHEMA)),
                                                stream=False)

    models, sent = run_with(AnthropicAdapter, Recorder(listing), op)  # type: ignore[arg-type]
    assert [m.features for m in models] == [["json_schema", "tools"], None]
    assert "output_config" not in sent and sent["tool_choice"] == {"type": "tool", "name": JSON_TOOL}

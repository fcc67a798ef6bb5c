"""The official ``anthropic`` SDK, with strict response validation, against the Anthropic emulator."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam, RawMessageDeltaEvent, ThinkingBlock, ToolParam, ToolUseBlock

from emulators.control import EmulatorControl
from emulators.features import thinking_text
from emulators.server import BackgroundEmulators
from tests.emulators.conftest import ANTHROPIC_KEY

GREETING = "Hello from the Anthropic emulator. You said: "
MESSAGES: list[MessageParam] = [{"role": "user", "content": "hi claude"}]


def sdk(emu: BackgroundEmulators, api_key: str = ANTHROPIC_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emu.url("anthropic"), api_key=api_key, _strict_response_validation=True,
                               max_retries=0, timeout=5.0)


@pytest.fixture
def ant(emu: BackgroundEmulators) -> anthropic.Anthropic:
    return sdk(emu)


def test_messages_create(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=100, system="Be kind.", messages=MESSAGES)
    assert message.content[0].type == "text"
    assert message.content[0].text == GREETING + "hi claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 9)
    assert message.model == "claude-sonnet-4-6"


def test_max_tokens_cut(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="claude-haiku-4-5", max_tokens=2, messages=MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == "Hello from"
    assert message.stop_reason == "max_tokens"


def test_stream_events_in_order(ant: anthropic.Anthropic) -> None:
    events = list(ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True))
    kinds = [getattr(event, "type", None) for event in events]
    deltas = kinds.count("content_block_delta")
    # ping events are consumed by the SDK; the rest arrive in the real API's order.
    assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    assert deltas == 9
    final = events[-2]
    assert isinstance(final, RawMessageDeltaEvent)
    assert final.delta.stop_reason == "end_turn" and final.usage.output_tokens == 9


def test_stream_helper(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == GREETING + "hi claude"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens == 9 and final.usage.input_tokens == 2


def test_models_list(ant: anthropic.Anthropic) -> None:
    models = list(ant.models.list())
    assert [m.id for m in models] == ["claude-sonnet-4-6", "claude-haiku-4-5"]
    page = ant.models.list(limit=1)
    assert page.has_more and page.last_id == "claude-sonnet-4-6"
    assert [m.id for m in page.iter_pages().__next__().data] == ["claude-sonnet-4-6"]
    assert ant.models.retrieve("claude-haiku-4-5").display_name == "Claude Haiku 4.5"


def test_auth_and_not_found_are_typed(emu: BackgroundEmulators, ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        sdk(emu, api_key="sk-ant-wrong").messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        ant.messages.create(model="claude-9", max_tokens=5, messages=MESSAGES)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "exc", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (402, anthropic.PaymentRequiredError, "billing_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
    ],
)
def test_status_faults_are_typed(
    ant: anthropic.Anthropic, controls: dict[str, EmulatorControl], status: int, exc: type[Exception],
    error_type: str,
) -> None:
    controls["anthropic"].add_faults({"mode": "status", "status": status, "headers": {"retry-after": "2"}})
    with pytest.raises(exc) as err:
        ant.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert isinstance(err.value, anthropic.APIStatusError)
    assert err.value.body["error"]["type"] == error_type  # type: ignore[index]
    assert err.value.response.headers["retry-after"] == "2"


def test_error_event_after_200(ant: anthropic.Anthropic, controls: dict[str, EmulatorControl]) -> None:
    controls["anthropic"].add_faults({"mode": "error_event", "after_chunks": 3})
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        ant.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)
    assert received == ["Hello ", "from ", "the "]
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


# ---- issue #16: tools, structured output, images, thinking, sampling ---------------------------

WEATHER_TOOL: ToolParam = {"name": "get_weather", "description": "Weather in a city",
                           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                            "required": ["city"]}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()


def test_tool_use_round_trip(ant: anthropic.Anthropic) -> None:
    first = ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, tools=[WEATHER_TOOL],
                                tool_choice={"type": "any"})
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert isinstance(call, ToolUseBlock) and call.name == "get_weather" and call.input == {"city": "text"}
    follow: list[MessageParam] = [*MESSAGES, {"role": "assistant", "content": [call.model_dump()]},  # type: ignore[list-item]
                                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                                "content": "Sunny"}]}]
    second = ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=follow, tools=[WEATHER_TOOL])
    assert second.content[0].type == "text" and second.content[0].text == "The tool get_weather returned: Sunny"


def test_streamed_tool_input_is_assembled_by_the_sdk(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES,
                             tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert isinstance(block, ToolUseBlock) and block.input == {"city": "text"} and final.stop_reason == "tool_use"


def test_a_tool_result_without_its_call_is_refused(ant: anthropic.Anthropic) -> None:
    orphan: list[MessageParam] = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                                                "content": "Sunny"}]}]
    with pytest.raises(anthropic.BadRequestError, match="corresponding `tool_use` block"):
        ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=orphan, tools=[WEATHER_TOOL])


def test_output_config_json_schema(ant: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES,
                                  output_config={"format": {"type": "json_schema", "schema": schema}})
    assert message.content[0].type == "text" and json.loads(message.content[0].text) == {"n": 1}


def test_thinking_blocks_signed_and_counted(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=2000, messages=MESSAGES,
                             thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert isinstance(thinking, ThinkingBlock) and thinking.thinking.startswith("Thinking about: hi claude")
    assert thinking.signature and final.content[1].type == "text"
    assert final.usage.output_tokens_details is not None and final.usage.output_tokens_details.thinking_tokens == 7


@pytest.mark.parametrize("effort", ["low", "high", "max"])
def test_adaptive_thinking_with_an_effort_on_sonnet_4_6(ant: anthropic.Anthropic, effort: Any) -> None:
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=2000, messages=MESSAGES,
                             thinking={"type": "adaptive", "display": "summarized"},
                             output_config={"effort": effort}) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert isinstance(thinking, ThinkingBlock) and thinking.thinking == thinking_text("hi claude", effort)
    assert thinking.signature and final.content[1].type == "text"
    plain = ant.messages.create(model="claude-sonnet-4-6", max_tokens=2000, messages=MESSAGES,
                                thinking={"type": "adaptive"})  # no effort: the model's default, high
    first = plain.content[0]
    assert isinstance(first, ThinkingBlock) and first.thinking == thinking_text("hi claude", "high")


def test_the_model_cards_say_which_thinking_and_effort_each_model_takes(ant: anthropic.Anthropic) -> None:
    sonnet, haiku = (ant.models.retrieve(m) for m in ("claude-sonnet-4-6", "claude-haiku-4-5"))
    assert (sonnet.max_input_tokens, sonnet.max_tokens) == (1_000_000, 128_000)
    caps = {m.id: m.model_dump()["capabilities"] for m in (sonnet, haiku)}
    assert caps["claude-sonnet-4-6"]["thinking"]["types"]["adaptive"]["supported"] is True
    assert caps["claude-sonnet-4-6"]["effort"]["supported"] is True
    assert caps["claude-haiku-4-5"]["thinking"]["types"]["adaptive"]["supported"] is False
    assert caps["claude-haiku-4-5"]["effort"]["supported"] is False


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("claude-haiku-4-5", {"thinking": {"type": "adaptive"}}, "'adaptive' thinking is not supported on this model"),
    ("claude-haiku-4-5", {"output_config": {"effort": "low"}}, "effort 'low' is not supported by this model"),
    ("claude-sonnet-4-6", {"output_config": {"effort": "xhigh"}}, "supported: low, medium, high, max"),
    ("claude-sonnet-4-6", {"output_config": {"effort": "extreme"}}, "Input should be 'low'"),
    ("claude-sonnet-4-6", {"thinking": {"type": "adaptive", "budget_tokens": 2048}}, "Extra inputs are not permitted"),
    ("claude-sonnet-4-6", {"thinking": {"type": "adaptive"}, "tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}},
     "forces tool use"),
    ("claude-sonnet-4-5", {}, "model: claude-sonnet-4-5"),  # retired 2026-11-30: not_found
])
def test_thinking_and_effort_a_model_does_not_take_are_refused(
        ant: anthropic.Anthropic, model: str, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(anthropic.APIStatusError, match=message) as caught:
        ant.messages.create(model=model, max_tokens=2000, messages=MESSAGES, extra_body=extra)
    assert caught.value.status_code == (404 if model == "claude-sonnet-4-5" else 400)


@pytest.mark.parametrize(("extra", "message"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "must be greater than `thinking.budget_tokens`"),
    ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "greater than or equal to 1024"),
    ({"temperature": 0.5, "top_p": 0.5}, "cannot both be specified"),
    ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "tool", "name": "nope"}}, "not found"),
    ({"tools": [{"name": "bad name!", "input_schema": {"type": "object"}}]}, "should match pattern"),
])
def test_refused_combinations(ant: anthropic.Anthropic, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, extra_body=extra)


def test_image_and_stop_sequence(ant: anthropic.Anthropic) -> None:
    content: list[Any] = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                          {"type": "text", "text": "what is it"}]
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=100, stop_sequences=["Hello"],
                                  messages=[{"role": "user", "content": content}])
    assert message.content[0].type == "text" and message.content[0].text == "I see 1 image (image/png 16 bytes). "
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "Hello"
    bad = [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG}}]
    with pytest.raises(anthropic.BadRequestError, match="media_type"):
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": bad}])  # type: ignore[typeddict-item]


def test_a_tool_turn_without_its_thinking_block_is_refused_while_thinking_is_on(ant: anthropic.Anthropic) -> None:
    turns: list[MessageParam] = [
        *MESSAGES,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"}]},
    ]
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        ant.messages.create(model="claude-sonnet-4-6", max_tokens=2000, messages=turns, tools=[WEATHER_TOOL],
                            thinking={"type": "enabled", "budget_tokens": 1024})
    answer = ant.messages.create(model="claude-sonnet-4-6", max_tokens=2000, messages=turns, tools=[WEATHER_TOOL])
    assert answer.content[0].type == "text" and answer.content[0].text == "The tool get_weather returned: Sunny"


def test_blocks_marked_for_caching_are_read_from_the_cache(ant: anthropic.Anthropic) -> None:
    system: list[Any] = [{"type": "text", "text": "a long and stable system prompt",
                          "cache_control": {"type": "ephemeral"}}]
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=100, system=system, messages=MESSAGES)
    assert message.usage.cache_read_input_tokens == 6 and message.usage.input_tokens == 2

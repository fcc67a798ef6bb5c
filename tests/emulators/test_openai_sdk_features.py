"""Chat beyond text on the OpenAI and LM Studio emulators, checked with the official ``openai``
SDK in strict mode: sampling, usage details, structured output, tool calls (plain and
streamed, with the follow-up), images and reasoning, and the API's 400s for malformed input."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from emulators.control import EmulatorControl
from emulators.features import SCHEMA_VIOLATION, after_tool_result, image_note, sample_instance, thinking_text
from emulators.server import BackgroundEmulators
from tests.emulators.test_openai_sdk import GREETING, sdk

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 60).decode()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"], "additionalProperties": False}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
USER = [{"role": "user", "content": "weather in Oslo?"}]


@pytest.fixture
def oai(emu: BackgroundEmulators) -> openai.OpenAI:
    return sdk(emu.url("openai"))


@pytest.fixture(params=["openai", "lmstudio"])
def both(request: pytest.FixtureRequest, emu: BackgroundEmulators) -> tuple[openai.OpenAI, str]:
    if request.param == "openai":
        return sdk(emu.url("openai")), "gpt-4o-mini"
    return sdk(emu.url("lmstudio"), api_key="lm-studio"), "qwen2.5-7b-instruct"


def _bad_request(call: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------- sampling and usage


def test_sampling_parameters_are_accepted_and_stop_cuts_the_reply(both: tuple[openai.OpenAI, str]) -> None:
    client, model = both
    result = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                            stop=["zzz", " the "], top_p=0.5, seed=7, presence_penalty=0.1,
                                            frequency_penalty=-0.1)
    assert result.choices[0].message.content is not None
    assert result.choices[0].message.content == "Hello from"
    assert result.choices[0].finish_reason == "stop"


def test_usage_details_are_reported(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert result.usage is not None and result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 0


@pytest.mark.parametrize(("extra", "param"), [
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"top_p": 1.5}, "top_p"),
    ({"presence_penalty": -3}, "presence_penalty"),
    ({"seed": "seven"}, "seed"),
])
def test_out_of_range_sampling_is_a_400_naming_the_parameter(both: tuple[openai.OpenAI, str], extra: dict[str, Any],
                                                             param: str) -> None:
    client, model = both
    error = _bad_request(lambda: client.chat.completions.create(model=model, messages=USER, **extra))
    assert error.param == param


# ---------------------------------------------------------------- structured output


def test_json_schema_reply_is_an_instance_the_sdk_parses(both: tuple[openai.OpenAI, str]) -> None:
    class Trip(BaseModel):
        city: str
        days: int

    client, model = both
    parsed = client.chat.completions.parse(model=model, messages=USER, response_format=Trip)
    assert parsed.choices[0].message.parsed == Trip(city="text", days=1)


def test_json_schema_streams_the_same_text(oai: openai.OpenAI) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA, "strict": True}}
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=USER, response_format=fmt, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == sample_instance(SCHEMA)


def test_json_object_needs_the_word_json(oai: openai.OpenAI) -> None:
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-4o", messages=USER,
                                                             response_format={"type": "json_object"}))
    assert "must contain the word 'json'" in error.message
    result = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "as JSON: hi"}],
                                         response_format={"type": "json_object"})
    assert json.loads(result.choices[0].message.content or "") == {"reply": GREETING + "as JSON: hi"}


def test_schema_violation_fault(emu: BackgroundEmulators, oai: openai.OpenAI) -> None:
    with EmulatorControl(emu.url("openai")) as control:
        control.add_faults({"mode": "schema_violation"})
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA}}
    result = oai.chat.completions.create(model="gpt-4o", messages=USER, response_format=fmt)
    assert json.loads(result.choices[0].message.content or "") == SCHEMA_VIOLATION


def test_malformed_response_format_is_a_400(oai: openai.OpenAI) -> None:
    missing: Any = {"type": "json_schema", "json_schema": {"schema": SCHEMA}}
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-4o", messages=USER, response_format=missing))
    assert error.param == "response_format.json_schema.name"


# ---------------------------------------------------------------- tools


def test_tool_call_then_follow_up(both: tuple[openai.OpenAI, str]) -> None:
    client, model = both
    result = client.chat.completions.create(model=model, messages=USER, tools=[WEATHER])
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert (calls[0].function.name, json.loads(calls[0].function.arguments)) == ("get_weather", {"city": "text"})
    follow: Any = [*USER, choice.message.model_dump(exclude_none=True),
                   {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 21 C"}]
    final = client.chat.completions.create(model=model, messages=follow, tools=[WEATHER])
    assert final.choices[0].message.content == after_tool_result("get_weather", "sunny, 21 C")
    assert final.choices[0].finish_reason == "stop"


def test_streamed_tool_call_is_put_together_by_the_sdk(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(model="gpt-4o-mini", messages=USER, tools=[CLOCK, WEATHER],
                                     tool_choice={"type": "function", "function": {"name": "get_weather"}}) as s:
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"city": "text"})]
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_answers_in_text(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=[WEATHER], tool_choice="none")
    assert result.choices[0].message.content == GREETING + "weather in Oslo?"


@pytest.mark.parametrize(("extra", "messages", "param"), [
    ({"tool_choice": "auto"}, USER, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, USER, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, USER, "tools[0].function.name"),
    ({}, [*USER, {"role": "tool", "tool_call_id": "call_x", "content": "r"}], "messages.[1].role"),
])
def test_malformed_tools_are_400s(oai: openai.OpenAI, extra: dict[str, Any], messages: Any, param: str) -> None:
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-4o-mini", messages=messages, **extra))
    assert error.param == param


# ---------------------------------------------------------------- images


def _image_message(url: str) -> Any:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_image_is_acknowledged_whole(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o", messages=_image_message(f"data:image/png;base64,{PNG}"))
    note = image_note([("image/png", len(base64.b64decode(PNG)))])
    assert result.choices[0].message.content == note + GREETING + "what is this"


def test_broken_image_is_a_400(oai: openai.OpenAI) -> None:
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-4o",
                                                             messages=_image_message("data:image/png;base64,@@")))
    assert error.code == "invalid_image_format"


def test_lmstudio_images_need_a_vision_model(emu: BackgroundEmulators) -> None:
    client = sdk(emu.url("lmstudio"), api_key="lm-studio")
    error = _bad_request(lambda: client.chat.completions.create(
        model="qwen2.5-7b-instruct", messages=_image_message(f"data:image/png;base64,{PNG}")))
    assert "does not support images" in error.message
    with EmulatorControl(emu.url("lmstudio")) as control:
        control.set_models([{"id": "qwen2-vl-2b-instruct", "type": "vlm"}])
    result = client.chat.completions.create(model="qwen2-vl-2b-instruct",
                                            messages=_image_message(f"data:image/png;base64,{PNG}"))
    assert (result.choices[0].message.content or "").startswith("I see 1 image (image/png")


# ---------------------------------------------------------------- reasoning


def test_reasoning_model_reports_reasoning_tokens(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-6-luna", messages=USER, reasoning_effort="low",
                                         max_completion_tokens=500)
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    thought = len(thinking_text("weather in Oslo?").split())
    assert result.usage.completion_tokens_details.reasoning_tokens == thought
    assert result.usage.completion_tokens == thought + len((result.choices[0].message.content or "").split())


def test_reasoning_effort_on_a_non_reasoning_model_and_max_tokens_on_a_reasoning_one_are_400s(
        oai: openai.OpenAI) -> None:
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-4o", messages=USER, reasoning_effort="low"))
    assert (error.param, error.code) == ("reasoning_effort", "unsupported_parameter")
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-6-luna", messages=USER, max_tokens=50))
    assert (error.param, error.code) == ("max_tokens", "unsupported_parameter")


def test_a_reasoning_model_refuses_a_temperature_but_its_default(oai: openai.OpenAI) -> None:
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-6-luna", messages=USER, temperature=0.2))
    assert (error.param, error.code) == ("temperature", "unsupported_value")
    assert "Only the default (1) value is supported" in error.message
    result = oai.chat.completions.create(model="gpt-6-luna", messages=USER, temperature=1)
    assert result.choices[0].message.content


def test_gpt_6_luna_takes_function_tools_only_without_reasoning(oai: openai.OpenAI) -> None:
    tools: list[Any] = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    error = _bad_request(lambda: oai.chat.completions.create(model="gpt-6-luna", messages=USER, tools=tools))
    assert error.param == "reasoning_effort" and "set reasoning_effort to 'none'" in error.message
    result = oai.chat.completions.create(model="gpt-6-luna", messages=USER, tools=tools, reasoning_effort="none")
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    assert not result.usage.completion_tokens_details.reasoning_tokens  # "none": it did not reason


def test_the_shut_down_o4_mini_is_not_found(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="o4-mini", messages=USER)
    assert missing.value.code == "model_not_found"

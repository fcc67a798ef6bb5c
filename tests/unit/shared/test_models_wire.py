"""shared.models: each link shape survives to_wire/from_wire, and to_wire is plain data."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.models import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Message, ModelInfo, Usage

_CALL = ToolCall("call_1", "weather", {"city": "Oslo"})

SAMPLES: list[Any] = [
    ChatRequest(model="m", messages=[Message("system", "be brief"), Message("user", "hi")], max_tokens=5,
                temperature=0.2, stream=True, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"),
    ChatRequest(model="m", messages=[Message("user", "hi")]),
    ChatRequest(model="m", messages=[
        Message("user", [TextPart("what is this?"), ImagePart("aGk=", "image/png")]),
        Message("assistant", "", tool_calls=[_CALL]),
        Message("tool", '{"temp": 3}', tool_call_id="call_1", name="weather"),
    ], tools=[ToolSpec("weather", "today's weather", {"type": "object", "properties": {"city": {"type": "string"}}})],
        tool_choice=ToolChoice("tool", "weather"), response_format=ResponseFormat("json_schema", {"type": "object"}),
        reasoning=Reasoning("high", 8192, include_thoughts=True), sampling=Sampling(stop=["\n"], seed=7)),
    ChatResult(text="hello", model="m", finish_reason="stop", usage=Usage(3, 4)),
    ChatResult(text="", model="m", finish_reason="tool_calls", usage=Usage(3, 4, cached_input_tokens=2,
               reasoning_tokens=1), tool_calls=[_CALL], reasoning="thought about it"),
    ChatResult(text="", model="m"),
    EmbedRequest(model="e", inputs=["a", "b"]),
    EmbedResult(vectors=[[0.5, 1.0]], model="e", usage=Usage(input_tokens=2)),
    ModelInfo(id="qwen", capabilities=["chat", "chatStream"], loaded=False, kind="llm", context_length=4096),
    ModelInfo(id="gpt", capabilities=["chat"]),
    ModelInfo(id="llava", capabilities=["chat"], features=["vision"], max_output_tokens=2048),
]
_FEATURES = ("tools", "tool_choice", "response_format", "reasoning", "sampling")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_round_trip_through_the_wire(sample: Any) -> None:
    wire = orjson.loads(orjson.dumps(sample.to_wire()))
    assert type(sample).from_wire(wire) == sample


@pytest.mark.parametrize("sample", [s for s in SAMPLES[:2] + SAMPLES[-3:] if isinstance(s, ChatRequest | ModelInfo)],
                         ids=lambda s: type(s).__name__)
def test_spelled_out_to_wire_matches_asdict(sample: Any) -> None:
    # The hand-written forms must stay what dataclasses.asdict gave before (without its deep
    # copy); a plain text request leaves out the #16 parts it does not use, and a plain
    # message is just its role and text.
    expected = dataclasses.asdict(sample)
    if isinstance(sample, ChatRequest):
        expected = {k: v for k, v in expected.items() if k not in _FEATURES}
        expected["messages"] = [{"role": m["role"], "content": m["content"]} for m in expected["messages"]]
    assert sample.to_wire() == expected


def test_a_plain_text_request_carries_no_feature_keys() -> None:
    assert not set(SAMPLES[1].to_wire()) & set(_FEATURES)
    assert set(SAMPLES[2].to_wire()) >= set(_FEATURES)


def test_message_text_joins_the_text_parts() -> None:
    assert Message("user", [TextPart("a"), ImagePart("aGk=", "image/png"), TextPart("b")]).text == "a\n\nb"
    assert ImagePart("aGk=", "image/png").data_url == "data:image/png;base64,aGk="


def test_to_wire_does_not_share_the_request_lists() -> None:
    request = SAMPLES[0]
    wire = request.to_wire()
    wire["messages"].append({"role": "user", "content": "injected"})
    assert len(request.messages) == 2

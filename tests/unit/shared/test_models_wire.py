"""shared.models: each link shape survives to_wire/from_wire, and to_wire is plain data."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from shared.models import ChatRequest, ChatResult, EmbedRequest, EmbedResult, Message, ModelInfo, Usage

SAMPLES: list[Any] = [
    ChatRequest(model="m", messages=[Message("system", "be brief"), Message("user", "hi")], max_tokens=5,
                temperature=0.2, stream=True, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"),
    ChatRequest(model="m", messages=[Message("user", "hi")]),
    ChatResult(text="hello", model="m", finish_reason="stop", usage=Usage(3, 4)),
    ChatResult(text="", model="m"),
    EmbedRequest(model="e", inputs=["a", "b"]),
    EmbedResult(vectors=[[0.5, 1.0]], model="e", usage=Usage(input_tokens=2)),
    ModelInfo(id="qwen", capabilities=["chat", "chatStream"], loaded=False, kind="llm", context_length=4096),
    ModelInfo(id="gpt", capabilities=["chat"]),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_round_trip_through_the_wire(sample: Any) -> None:
    wire = orjson.loads(orjson.dumps(sample.to_wire()))
    assert type(sample).from_wire(wire) == sample


@pytest.mark.parametrize("sample", [s for s in SAMPLES if isinstance(s, ChatRequest | ModelInfo)],
                         ids=lambda s: type(s).__name__)
def test_spelled_out_to_wire_matches_asdict(sample: Any) -> None:
    # The hand-written forms must stay what dataclasses.asdict gave before (without its deep copy).
    assert sample.to_wire() == dataclasses.asdict(sample)


def test_to_wire_does_not_share_the_request_lists() -> None:
    request = SAMPLES[0]
    wire = request.to_wire()
    wire["messages"].append({"role": "user", "content": "injected"})
    assert len(request.messages) == 2

"""Chat beyond plain text on the OpenAI-shaped kinds (openai, lmstudio) through the real stack
and the official MCP client (#16), chat and chatStream: structured output, a tool-call round
trip, an image, reasoning tokens and a stop sequence, each reaching the emulator in the real
wire format and coming back mapped. What the emulated model answers is predicted by
``emulators.features``, the same on every kind.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.features import after_tool_result, image_note, sample_instance, thinking_text
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"], "additionalProperties": False}
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
TARGETS = [("openai", "gpt-4o"), ("lmstudio", "qwen2.5-7b-instruct")]


@pytest.fixture(scope="module")
def obox() -> Iterator[Sandbox]:
    with Sandbox(run_providers=("openai", "lmstudio")) as sandbox:  # gpt-6-luna: the reasoning model
        sandbox.wait_workers_up()
        yield sandbox


def call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The structured content of one successful tool call through the official client."""
    async def go() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool(tool, arguments)
        assert result.structured_content is not None, result.content
        assert not result.is_error, result.structured_content
        return result.structured_content
    return run(go())


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
@pytest.mark.parametrize(("provider", "model"), TARGETS)
def test_structured_output(obox: Sandbox, tool: str, provider: str, model: str) -> None:
    out = call(obox, tool, {"prompt": "plan a trip", "provider": provider, "model": model,
                            "response_format": {"type": "json_schema", "schema": SCHEMA, "name": "trip"}})
    assert out["json"] == sample_instance(SCHEMA) and json.loads(out["text"]) == out["json"]
    assert out["finish_reason"] == "stop"


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
@pytest.mark.parametrize(("provider", "model"), TARGETS)
def test_tool_call_round_trip(obox: Sandbox, tool: str, provider: str, model: str) -> None:
    where = {"provider": provider, "model": model, "tools": TOOLS}
    first = call(obox, tool, {"prompt": "weather in Oslo?", **where})
    assert first["finish_reason"] == "tool_calls" and first["text"] == ""
    [called] = first["tool_calls"]
    assert (called["name"], called["arguments"]) == ("get_weather", {"city": "text"})
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": first["tool_calls"]},
                {"role": "tool", "tool_call_id": called["id"], "content": "12 C and rain"}]
    final = call(obox, tool, {"messages": messages, **where})
    assert (final["text"], final["finish_reason"]) == (after_tool_result("get_weather", "12 C and rain"), "stop")
    assert "tool_calls" not in final


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_an_image_reaches_openai_whole(obox: Sandbox, tool: str) -> None:
    data = base64.b64encode(PNG).decode()
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                             {"type": "image", "data": data, "mimeType": "image/png"}]}]
    out = call(obox, tool, {"messages": messages, "provider": "openai", "model": "gpt-4o"})
    greeting = "Hello from the OpenAI emulator. You said: what is this"
    assert out["text"] == image_note([("image/png", len(PNG))]) + greeting


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_reasoning_tokens_are_reported(obox: Sandbox, tool: str) -> None:
    out = call(obox, tool, {"prompt": "weather in Oslo?", "provider": "openai", "model": "gpt-6-luna",
                            "reasoning": {"effort": "low"}})
    thought = len(thinking_text("weather in Oslo?").split())
    assert out["usage"]["reasoning_tokens"] == thought
    assert out["usage"]["output_tokens"] == thought + len(out["text"].split())


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
@pytest.mark.parametrize(("provider", "model"), TARGETS)
def test_a_stop_sequence_is_passed(obox: Sandbox, tool: str, provider: str, model: str) -> None:
    out = call(obox, tool, {"prompt": "hi", "provider": provider, "model": model, "stop": [" the "], "seed": 3})
    assert (out["text"], out["finish_reason"]) == ("Hello from", "stop")


def _requests(box: Sandbox, path: str) -> int:
    by_path: dict[str, int] = httpx.get(f"{box.emulators.url('openai')}/_emulator/stats").json()["by_path"]
    return by_path.get(path, 0)


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
@pytest.mark.parametrize("extra", [{}, {"seed": 3}], ids=["plain", "beyond-text"])
def test_a_temperature_to_a_reasoning_model_is_unsupported_before_the_call_or_dropped(
        obox: Sandbox, tool: str, extra: dict[str, Any]) -> None:
    # gpt-6-luna reasons by default and refuses a temperature (the emulator answers 400, as OpenAI does).
    arguments = {"prompt": "hi", "provider": "openai", "model": "gpt-6-luna", "temperature": 0.2, **extra}
    before = _requests(obox, "/v1/chat/completions")

    async def go() -> Any:
        async with obox.client() as client:
            return await client.call_tool(tool, arguments)
    result = run(go())
    assert result.is_error and result.structured_content is not None
    error = result.structured_content["error"]
    assert error["type"] == "unsupported" and "does not take temperature" in error["message"], error
    assert _requests(obox, "/v1/chat/completions") == before  # refused before any paid request
    out = call(obox, tool, {**arguments, "drop_unsupported": True})
    assert out["text"] == "Hello from the OpenAI emulator. You said: hi"
    assert out["dropped"] == ["temperature"]

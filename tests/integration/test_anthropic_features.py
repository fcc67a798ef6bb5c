"""Chat beyond plain text on the anthropic kind (#16), through the real stack and the official MCP
client: gateway, anthropic worker and the Anthropic emulator speaking the Messages wire format.

No model features are set in config: the kind's declaration (KindSpec.features) lets these
calls through, and the worker's adapter maps each to Messages API shapes the emulator checks.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.features import after_tool_result, image_note, sample_instance, thinking_text
from harness.sandbox import Sandbox
from shared.tool_names import CHAT, CHAT_STREAM
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

MODEL = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
SCHEMA = {"type": "object", "required": ["city", "days"], "additionalProperties": False,
          "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
BOTH = pytest.mark.parametrize("tool", [CHAT, CHAT_STREAM])


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(run_providers=("openai", "anthropic")) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The structured content of one successful call; a stream's progress text must equal its text."""
    progress: list[str] = []

    async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def go() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool(tool, {**MODEL, **arguments},
                                            progress_callback=on_progress if tool == CHAT_STREAM else None)
        assert result.structured_content is not None and not result.is_error, result.content
        return result.structured_content

    content = run(go())
    if tool == CHAT_STREAM:
        assert "".join(progress) == content["text"]
    return content


@BOTH
def test_structured_output_comes_back_parsed(box: Sandbox, tool: str) -> None:
    content = call(box, tool, {"prompt": "Plan a trip", "response_format": {"type": "json_schema", "schema": SCHEMA}})
    assert content["json"] == sample_instance(SCHEMA) and content["finish_reason"] == "stop"


@BOTH
def test_a_tool_call_and_its_result(box: Sandbox, tool: str) -> None:
    first = call(box, tool, {"prompt": "weather in Oslo?", "tools": [WEATHER], "tool_choice": "required"})
    assert first["finish_reason"] == "tool_calls" and first["text"] == ""
    (made,) = first["tool_calls"]
    assert made["name"] == "get_weather" and made["arguments"] == {"city": "text"} and made["id"].startswith("toolu_")
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [made]},
                {"role": "tool", "tool_call_id": made["id"], "content": "12 C"}]
    second = call(box, tool, {"messages": messages, "tools": [WEATHER]})
    assert second["text"] == after_tool_result("get_weather", "12 C") and "tool_calls" not in second


@BOTH
def test_an_image_reaches_claude_whole(box: Sandbox, tool: str) -> None:
    picture = {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    content = call(box, tool, {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, picture]}]})
    assert content["text"].startswith(image_note([("image/png", len(PNG))]) + "Hello from the Anthropic emulator")


@BOTH
def test_a_budget_below_anthropics_floor_is_raised_to_it_and_the_result_says_so(box: Sandbox, tool: str) -> None:
    # The emulator refuses a budget under 1024 as the Messages API does (a 400 before this change).
    content = call(box, tool, {"prompt": "why is the sky blue", "max_tokens": 200,
                               "reasoning": {"budget_tokens": 100, "include_thoughts": True}})
    assert content["adjusted"] == ["reasoning.budget_tokens 100 -> 1024 (claude-sonnet-4-5 takes at least 1024)"]
    assert content["reasoning"] == thinking_text("why is the sky blue")
    assert content["text"].startswith("Hello from the Anthropic emulator")


@BOTH
def test_thinking_text_and_tokens(box: Sandbox, tool: str) -> None:
    content = call(box, tool, {"prompt": "why is the sky blue", "max_tokens": 200,
                               "reasoning": {"effort": "low", "include_thoughts": True}})
    thought = thinking_text("why is the sky blue")
    assert content["reasoning"] == thought
    assert content["usage"]["reasoning_tokens"] == len(thought.split())
    assert content["text"].startswith("Hello from the Anthropic emulator")


@BOTH
def test_a_stop_sequence_and_top_p(box: Sandbox, tool: str) -> None:
    content = call(box, tool, {"prompt": "hi", "stop": ["emulator"], "top_p": 0.5})
    assert content["text"] == "Hello from the Anthropic " and content["finish_reason"] == "stop"

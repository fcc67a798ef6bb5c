"""The gemini kind beyond plain text (#16) through the real stack: gateway, a gemini worker,
the Gemini emulator and the official MCP client, on chat and chatStream: a function call and
its result sent back, structured output (and a reply that breaks its schema), an image,
thinking with its text and token counts, and the sampling parameters the kind takes."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

PROVIDER = "gemini"
CHAT = "gemini-3.5-flash-lite"
GREETING = "Hello from the Gemini emulator. You said: "
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TOOLS = ("chat", "chatStream")


def _gemini_defaults(config: dict[str, Any]) -> None:
    chat = {"provider": PROVIDER, "model": CHAT}
    config["defaults"] = {"chat": chat, "chatStream": chat}
    # An operator's config still naming a shut-down 2.5 id (Google routes its calls to 3.5 Flash-Lite).
    config["providers"][PROVIDER]["models"].append(
        {"id": "gemini-2.5-flash", "capabilities": ["chat", "chatStream"], "features": ["reasoning"]})


@pytest.fixture(scope="module")
def gbox() -> Iterator[Sandbox]:
    with Sandbox(heartbeat_s=0.25, run_providers=(PROVIDER,), tweak=_gemini_defaults) as box:
        box.wait_workers_up()
        yield box


@pytest.fixture(autouse=True)
def _clean(gbox: Sandbox) -> None:
    base = gbox.emulators.url(PROVIDER)
    httpx.delete(f"{base}/_emulator/faults").raise_for_status()
    httpx.delete(f"{base}/_emulator/stats").raise_for_status()


def call(box: Sandbox, arguments: dict[str, Any], tool: str = "chat") -> dict[str, Any]:
    """The structured content of one successful tool call through the official client."""
    async def go() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool(tool, arguments)
        assert not result.is_error and result.structured_content is not None, result.content
        return result.structured_content
    return run(go())


@pytest.mark.parametrize("tool", TOOLS)
def test_a_function_call_and_its_result(gbox: Sandbox, tool: str) -> None:
    first = call(gbox, {"prompt": "weather in Oslo?", "tools": [WEATHER]}, tool)
    assert first["provider"] == PROVIDER and first["finish_reason"] == "tool_calls" and first["text"] == ""
    [made] = first["tool_calls"]
    assert made["name"] == "get_weather" and made["arguments"] == {"city": "text"}
    assert re.fullmatch(r"call_[0-9a-f]{12}", made["id"])  # Gemini sent none
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [made]},
                {"role": "tool", "tool_call_id": made["id"], "content": "12 C and rain"}]
    second = call(gbox, {"messages": messages, "tools": [WEATHER]}, tool)
    assert second["text"] == "The tool get_weather returned: 12 C and rain"
    assert second["finish_reason"] == "stop" and "tool_calls" not in second


@pytest.mark.parametrize("tool", TOOLS)
def test_structured_output_is_parsed(gbox: Sandbox, tool: str) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"]}
    out = call(gbox, {"prompt": "a forecast", "response_format": {"type": "json_schema", "schema": schema}}, tool)
    assert out["json"] == {"city": "text", "days": 1} and out["text"] == '{"city":"text","days":1}'


@pytest.mark.parametrize("tool", TOOLS)
def test_an_image_arrives_whole(gbox: Sandbox, tool: str) -> None:
    image = {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    out = call(gbox, {"messages": messages}, tool)
    assert out["text"] == f"I see 1 image (image/png {len(PNG)} bytes). {GREETING}what is this?"


@pytest.mark.parametrize("tool", TOOLS)
def test_thinking_text_and_tokens(gbox: Sandbox, tool: str) -> None:
    # Gemini 3 thinks by level: the effort goes out as thinkingLevel, which the emulated thoughts name.
    out = call(gbox, {"prompt": "why blue", "reasoning": {"effort": "low", "include_thoughts": True}}, tool)
    assert out["text"] == GREETING + "why blue"
    assert out["reasoning"] == "Thinking (low effort) about: why blue. The answer follows."
    assert out["usage"]["reasoning_tokens"] == 9 and out["usage"]["output_tokens"] == 9 + 9
    assert "adjusted" not in out  # nothing was changed: no note


@pytest.mark.parametrize("tool", TOOLS)
def test_a_budget_to_a_model_that_thinks_by_level_becomes_its_level_and_the_result_says_so(gbox: Sandbox,
                                                                                          tool: str) -> None:
    # Gemini 3 models steer thinking by level (a budget is kept only for backwards compatibility):
    # the budget's effort is sent as the level, and the result names it.
    out = call(gbox, {"prompt": "why blue", "reasoning": {"budget_tokens": 50000, "include_thoughts": True}}, tool)
    assert out["adjusted"] == ["reasoning.budget_tokens 50000 -> thinking level high "
                               "(gemini-3.5-flash-lite takes a thinking level, not a budget)"]
    assert out["reasoning"] == "Thinking (high effort) about: why blue. The answer follows."


@pytest.mark.parametrize("tool", TOOLS)
def test_a_budget_to_a_gemini_2_5_model_is_fitted_to_its_range(gbox: Sandbox, tool: str) -> None:
    # gemini-2.5-flash, named on purpose: a budgeted model (Google now routes it to 3.5 Flash-Lite,
    # which still takes a budget); the kind's documented 2.5 range applies first.
    out = call(gbox, {"prompt": "why blue", "model": "gemini-2.5-flash",
                      "reasoning": {"budget_tokens": 50000, "include_thoughts": True}}, tool)
    assert out["adjusted"] == ["reasoning.budget_tokens 50000 -> 24576 (gemini-2.5-flash takes 0 to 24576)"]
    assert out["reasoning"] == "Thinking about: why blue. The answer follows."


@pytest.mark.parametrize("tool", TOOLS)
def test_sampling_parameters_reach_gemini(gbox: Sandbox, tool: str) -> None:
    out = call(gbox, {"prompt": "hi", "model": "gemini-3.8-flash", "stop": ["zz", "emulator"], "top_p": 0.5,
                      "seed": 3, "presence_penalty": 0.1, "frequency_penalty": 0.2}, tool)
    assert out["text"] == "Hello from the Gemini " and out["finish_reason"] == "stop"  # cut by a stop sequence
    assert not out.get("dropped")


def test_penalties_to_flash_lite_are_unsupported_before_the_call_or_dropped(gbox: Sandbox) -> None:
    async def go() -> Any:
        async with gbox.client() as client:
            return await client.call_tool("chat", {"prompt": "hi", "presence_penalty": 0.1})
    result = run(go())
    assert result.is_error and result.structured_content is not None
    error = result.structured_content["error"]
    assert error["type"] == "unsupported", error
    assert "model 'gemini-3.5-flash-lite' of gemini (Google Gemini) does not take presence_penalty" in error["message"]
    by_path = httpx.get(f"{gbox.emulators.url(PROVIDER)}/_emulator/stats").json()["by_path"]
    assert not any("generateContent" in path for path in by_path), by_path  # refused before any paid request
    out = call(gbox, {"prompt": "hi", "presence_penalty": 0.1, "frequency_penalty": 0.2, "top_p": 0.5,
                      "drop_unsupported": True})
    assert out["text"] == GREETING + "hi"
    assert out["dropped"] == ["presence_penalty", "frequency_penalty"]


def test_a_reply_that_breaks_the_schema_is_invalid_output(gbox: Sandbox) -> None:
    httpx.post(f"{gbox.emulators.url(PROVIDER)}/_emulator/faults",
               json={"faults": [{"mode": "schema_violation"}]}).raise_for_status()
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

    async def go() -> Any:
        async with gbox.client() as client:
            return await client.call_tool("chat", {"prompt": "x", "response_format": {"type": "json_schema",
                                                                                      "schema": schema}})
    result = run(go())
    assert result.is_error and result.structured_content is not None
    error = result.structured_content["error"]
    assert error["type"] == "invalid_output", error

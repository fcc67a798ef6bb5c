"""The ``ollama`` kind beyond plain text (#16) through the real stack (supervisord, gateway,
worker, the Ollama emulator) with the official MCP client: structured output, a tool-call
round trip, an image, reasoning and sampling parameters, with chat and chatStream; the
features come from discovery (``/api/show`` capabilities), none from config.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from emulators.features import sample_instance, thinking_text
from emulators.ollama_api import DEFAULT_MODELS
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

CHAT_MODEL, EMBED_MODEL, IDLE_MODEL, FEATURE_MODEL = (m.name for m in DEFAULT_MODELS)
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"]}
WEATHER = {"name": "get_weather", "description": "The weather in a city.", "parameters": SCHEMA}
PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
ASK = [{"role": "user", "content": "weather in Paris?"}]


@pytest.fixture(scope="module")
def fbox() -> Iterator[Sandbox]:
    with Sandbox(run_providers=("ollama",)) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(autouse=True)
def _clean(fbox: Sandbox) -> None:
    url = fbox.emulators.url("ollama")
    httpx.delete(f"{url}/_emulator/faults").raise_for_status()
    httpx.delete(f"{url}/_emulator/stats").raise_for_status()


def call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any], list[str]]:
    """``(is_error, structured content, progress deltas)`` of one call through the official client."""
    deltas: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        deltas.append(message or "")

    async def go() -> tuple[bool, dict[str, Any], list[str]]:
        async with box.client() as client:
            result = await client.call_tool(tool, {"provider": "ollama", **arguments},
                                            progress_callback=on_progress if tool == "chatStream" else None)
        assert result.structured_content is not None, result.content
        return bool(result.is_error), result.structured_content, deltas
    return run(go())


def chat_requests(box: Sandbox) -> int:
    stats = httpx.get(box.emulators.url("ollama") + "/_emulator/stats").json()
    return int(stats["by_path"].get("/api/chat", 0))


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_structured_output_comes_back_parsed(fbox: Sandbox, tool: str) -> None:
    failed, out, _ = call(fbox, tool, {"model": CHAT_MODEL, "messages": ASK,
                                       "response_format": {"type": "json_schema", "schema": SCHEMA}})
    assert not failed, out
    assert out["json"] == sample_instance(SCHEMA) and orjson.loads(out["text"]) == out["json"]
    assert out["finish_reason"] == "stop"


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_a_tool_call_round_trip(fbox: Sandbox, tool: str) -> None:
    failed, out, deltas = call(fbox, tool, {"model": CHAT_MODEL, "messages": ASK, "tools": [WEATHER]})
    assert not failed, out
    assert out["finish_reason"] == "tool_calls" and out["text"] == "" and not "".join(deltas)
    [made] = out["tool_calls"]
    assert made["name"] == "get_weather" and made["arguments"] == {"city": "text", "days": 1}
    follow_up = [*ASK, {"role": "assistant", "content": "", "tool_calls": [made]},
                 {"role": "tool", "tool_call_id": made["id"], "content": "18 C, sunny"}]  # name filled in
    failed, after, _ = call(fbox, tool, {"model": CHAT_MODEL, "messages": follow_up, "tools": [WEATHER]})
    assert not failed, after
    assert after["text"] == "The tool get_weather returned: 18 C, sunny" and after["finish_reason"] == "stop"
    assert not after.get("tool_calls")


def test_a_forced_tool_choice_is_unsupported_before_any_request(fbox: Sandbox) -> None:
    failed, out, _ = call(fbox, "chat", {"model": CHAT_MODEL, "messages": ASK, "tools": [WEATHER],
                                         "tool_choice": "required"})
    assert failed and out["error"]["type"] == "unsupported", out
    assert "no tool_choice" in out["error"]["message"]
    assert chat_requests(fbox) == 0


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_an_image_arrives_whole(fbox: Sandbox, tool: str) -> None:
    image = {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    failed, out, _ = call(fbox, tool, {"model": FEATURE_MODEL, "messages": messages})
    assert not failed, out
    assert out["text"].startswith(f"I see 1 image (image/png {len(PNG)} bytes). Hello from")


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_reasoning_returns_the_thoughts_when_asked(fbox: Sandbox, tool: str) -> None:
    failed, out, deltas = call(fbox, tool, {"model": FEATURE_MODEL, "prompt": "why is the sky blue",
                                            "reasoning": {"effort": "low", "include_thoughts": True}})
    assert not failed, out
    assert out["reasoning"] == thinking_text("why is the sky blue")
    assert out["text"] == "Hello from the Ollama emulator. You said: why is the sky blue"
    assert out["usage"].get("reasoning_tokens") is None  # Ollama does not count them apart
    if tool == "chatStream":
        assert "".join(deltas) == out["text"]  # the thinking never goes out as text


def test_sampling_parameters_reach_ollama(fbox: Sandbox) -> None:
    failed, out, _ = call(fbox, "chat", {"model": CHAT_MODEL, "prompt": "hi", "stop": ["END"], "top_p": 0.5,
                                         "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2})
    assert not failed and not out.get("dropped"), out


def test_discovered_features(fbox: Sandbox) -> None:
    failed, out, _ = call(fbox, "listModels", {})
    assert not failed, out
    features = {m["id"]: m.get("features") for m in out["models"] if m.get("provider", "ollama") == "ollama"}
    assert sorted(features[FEATURE_MODEL]) == ["json_schema", "reasoning", "tools", "vision"]
    assert sorted(features[CHAT_MODEL]) == ["json_schema", "tools"]

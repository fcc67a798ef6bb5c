"""The ``ollama`` kind beyond plain text (#16) through the real stack (supervisord, gateway,
worker, the Ollama emulator) with the official MCP client: an image (chat and chatStream),
sampling parameters, and a forced tool choice Ollama cannot express; the features come from
discovery (``/api/show`` capabilities) and the kind, none from config.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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


def test_sampling_parameters_reach_ollama(fbox: Sandbox) -> None:
    failed, out, _ = call(fbox, "chat", {"model": CHAT_MODEL, "prompt": "hi", "stop": ["END"], "top_p": 0.5,
                                         "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2})
    assert not failed and not out.get("dropped"), out

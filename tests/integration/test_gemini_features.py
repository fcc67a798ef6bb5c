"""The gemini kind beyond plain text (#16) through the real stack: gateway, a gemini worker,
the Gemini emulator and the official MCP client, on chat and chatStream: an image, and the
sampling parameters the kind takes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

PROVIDER = "gemini"
CHAT = "gemini-2.5-flash"
GREETING = "Hello from the Gemini emulator. You said: "
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
TOOLS = ("chat", "chatStream")


def _gemini_defaults(config: dict[str, Any]) -> None:
    chat = {"provider": PROVIDER, "model": CHAT}
    config["defaults"] = {"chat": chat, "chatStream": chat}


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
def test_an_image_arrives_whole(gbox: Sandbox, tool: str) -> None:
    image = {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    out = call(gbox, {"messages": messages}, tool)
    assert out["text"] == f"I see 1 image (image/png {len(PNG)} bytes). {GREETING}what is this?"


@pytest.mark.parametrize("tool", TOOLS)
def test_sampling_parameters_reach_gemini(gbox: Sandbox, tool: str) -> None:
    out = call(gbox, {"prompt": "hi", "stop": ["zz", "emulator"], "top_p": 0.5, "seed": 3, "presence_penalty": 0.1,
                      "frequency_penalty": 0.2}, tool)
    assert out["text"] == "Hello from the Gemini " and out["finish_reason"] == "stop"  # cut by a stop sequence
    assert not out.get("dropped")

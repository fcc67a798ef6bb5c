"""Chat beyond plain text (#16), the gateway's side, through the real stack and the MCP SDK client.

Models' features are set in providers.json (config ``features``), so the gateway's rules
are shown whatever the kinds declare: bad images are refused, a model lacking a feature
is ``unsupported`` before any paid request (the emulator counts no request), sampling
parameters a kind does not take are refused or dropped, and a call needing a feature is
routed to a model that has it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.control import EmulatorControl
from gateway.chat_inputs import MAX_IMAGE_BYTES, MAX_IMAGES
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def _features(providers: dict[str, Any]) -> None:
    """openai: gpt-4o-mini (the default) and gpt-6-luna have no features, gpt-4o has vision and
    tools; anthropic: claude-sonnet-4-6 none, claude-haiku-4-5 reasoning."""
    features = {"gpt-4o-mini": [], "gpt-4o": ["vision", "tools"], "gpt-6-luna": [], "claude-sonnet-4-6": [],
                "claude-haiku-4-5": ["reasoning"]}
    for name in ("openai", "anthropic"):
        for model in providers["providers"][name]["models"]:
            if model["id"] in features:
                model["features"] = features[model["id"]]


@pytest.fixture(scope="module")
def fbox() -> Iterator[Sandbox]:
    with Sandbox(tweak=_features, run_providers=("openai", "anthropic")) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(autouse=True)
def _fresh_counts(fbox: Sandbox) -> None:
    for provider in ("openai", "anthropic"):
        with EmulatorControl(fbox.emulators.url(provider)) as control:
            control.reset()


def call(box: Sandbox, arguments: dict[str, Any], tool: str = "chat") -> tuple[bool, dict[str, Any]]:
    """``(is_error, structured content)`` of one tool call through the official client."""
    async def go() -> tuple[bool, dict[str, Any]]:
        async with box.client() as client:
            result = await client.call_tool(tool, arguments)
        assert result.structured_content is not None, result.content
        return bool(result.is_error), result.structured_content
    return run(go())


def requests(box: Sandbox, provider: str) -> int:
    with EmulatorControl(box.emulators.url(provider)) as control:
        return int(control.stats()["requests"])


def image(raw: bytes = PNG, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(raw).decode(), "mimeType": mime}


def looking_at(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is in this picture?"}, *parts]}]


@pytest.mark.parametrize(("parts", "says"), [
    ((image(PNG + b"\x00" * MAX_IMAGE_BYTES),), f"the limit is {MAX_IMAGE_BYTES} per image"),
    ((image(),) * (MAX_IMAGES + 1), f"too many images: {MAX_IMAGES + 1}, the limit is {MAX_IMAGES}"),
    ((image(PNG, "image/jpeg"),), "image data is image/png but declared image/jpeg"),
    (({"type": "image", "url": "https://example.com/a.png"},), "the gateway does not fetch remote images"),
    (({"type": "image", "data": "%%%", "mimeType": "image/png"},), "not valid base64"),
], ids=["too-large", "too-many", "wrong-type", "remote-url", "bad-base64"])
def test_a_bad_image_is_refused_before_any_provider_call(fbox: Sandbox, parts: tuple[Any, ...], says: str) -> None:
    failed, content = call(fbox, {"messages": looking_at(*parts), "model": "gpt-4o"})
    assert failed and content["error"]["type"] == "invalid_request"
    assert says in content["error"]["message"]
    assert requests(fbox, "openai") == 0


@pytest.mark.parametrize(("arguments", "feature"), [
    ({"messages": looking_at(image())}, "vision"),
    ({"prompt": "weather?", "tools": [{"name": "get_weather", "parameters": {"type": "object"}}]}, "tools"),
], ids=["vision", "tools"])
@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_a_model_lacking_a_feature_is_unsupported_before_any_paid_call(
        fbox: Sandbox, arguments: dict[str, Any], feature: str, tool: str) -> None:
    failed, content = call(fbox, {**arguments, "model": "gpt-4o-mini"}, tool)
    assert failed and content["error"]["type"] == "unsupported"
    assert f"model 'gpt-4o-mini' of openai (OpenAI) does not support {feature}" in content["error"]["message"]
    assert requests(fbox, "openai") == 0


def test_a_sampling_parameter_the_provider_does_not_take_is_refused_or_dropped(fbox: Sandbox) -> None:
    failed, content = call(fbox, {"prompt": "hi", "provider": "anthropic", "seed": 7})
    assert failed and content["error"]["type"] == "unsupported"
    assert "anthropic (Anthropic) does not take seed" in content["error"]["message"]
    assert requests(fbox, "anthropic") == 0
    failed, content = call(fbox, {"prompt": "hi", "provider": "anthropic", "seed": 7, "drop_unsupported": True})
    assert not failed and content["provider"] == "anthropic" and content["dropped"] == ["seed"]
    assert requests(fbox, "anthropic") == 1


@pytest.mark.parametrize("tool", ["chat", "chatStream"])
def test_a_call_needing_a_feature_is_routed_to_a_model_with_it(fbox: Sandbox, tool: str) -> None:
    failed, content = call(fbox, {"prompt": "think about it", "reasoning": {"effort": "low"}, "max_tokens": 4096},
                           tool)
    assert not failed, content
    assert (content["provider"], content["model"]) == ("anthropic", "claude-haiku-4-5")
    assert content["route"]["reason"] == (
        f"the {tool} default openai/gpt-4o-mini lacks reasoning; "
        "anthropic/claude-haiku-4-5 is the first by priority with reasoning")
    assert requests(fbox, "openai") == 0 and requests(fbox, "anthropic") == 1


def test_an_image_is_routed_to_a_model_with_vision_and_reaches_it(fbox: Sandbox) -> None:
    failed, content = call(fbox, {"messages": looking_at({"type": "image", "url": "data:image/png;base64,"
                                                          + base64.b64encode(PNG).decode()})})
    assert not failed, content
    assert (content["provider"], content["model"]) == ("openai", "gpt-4o")
    assert content["route"]["reason"].startswith("the chat default openai/gpt-4o-mini lacks vision; ")
    assert requests(fbox, "openai") == 1


def test_a_tool_call_round_trip_reaches_the_provider(fbox: Sandbox) -> None:
    """The assistant's call and the tool's result (its name left for the gateway to fill in)
    travel to the worker, which parses them, and on to the provider: one request."""
    messages = [{"role": "user", "content": "weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "12 C"}]
    tools = [{"name": "get_weather", "description": "Weather for a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    failed, content = call(fbox, {"messages": messages, "tools": tools, "tool_choice": "auto"})
    assert not failed, content
    assert (content["provider"], content["model"]) == ("openai", "gpt-4o")
    assert "lacks tools" in content["route"]["reason"]
    assert requests(fbox, "openai") == 1

"""Structured output and listModels through the real stack, with the official MCP client (#16).

The openai emulator's chat model is declared in config as having structured output, so the
call reaches it; a ``schema_violation`` fault makes it answer something the schema refuses
(before the openai kind maps response_format, it answers its usual text, which is not JSON:
the gateway refuses that the same way).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.sandbox import Sandbox
from shared.tool_names import CHAT, CHAT_STREAM, GET_HEALTH, LIST_MODELS
from tests.integration.conftest import clear_faults, inject, run
from tests.integration.security_helpers import add_clients

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "required": ["city"], "additionalProperties": False,
          "properties": {"city": {"type": "string"}}}
STRUCTURED = {"type": "json_schema", "schema": SCHEMA, "name": "place"}


def _structured_openai(providers: dict[str, Any]) -> None:
    for model in providers["providers"]["openai"]["models"]:
        if "chat" in model["capabilities"]:
            model["features"] = ["json_schema"]


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.0, heartbeat_s=0.25, tweak=_structured_openai) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.mark.parametrize("tool", [CHAT, CHAT_STREAM])
def test_a_reply_that_fails_the_schema_is_invalid_output_with_the_raw_text(box: Sandbox, tool: str) -> None:
    inject(box, "openai", {"mode": "schema_violation"})
    progress: list[str] = []

    async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def scenario() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool(tool, {"prompt": "Where is the Eiffel tower?", "provider": "openai",
                                                   "model": "gpt-4o-mini", "response_format": STRUCTURED},
                                            progress_callback=on_progress if tool == CHAT_STREAM else None)
        assert result.is_error and result.structured_content is not None, result.content
        error: dict[str, Any] = result.structured_content["error"]
        return error

    try:
        error = run(scenario())
    finally:
        clear_faults(box)
    assert error["type"] == "invalid_output" and error["retryable"] is True and error["provider"] == "openai"
    assert error["raw_text"] and set(error["validation_error"]) == {"path", "message"}
    if tool == CHAT_STREAM:  # the text went out as progress first, then the check at the end refused it
        assert "".join(progress) == error["raw_text"]


def test_list_models_shows_a_restricted_client_only_its_models(box: Sandbox) -> None:
    tokens = add_clients(box, narrow={"tools": [LIST_MODELS], "providers": ["openai", "anthropic"],
                                      "models": ["gpt-4o-mini", "claude-haiku-4-5"]})

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        async with box.client(token=tokens["narrow"]) as client:
            listed = await client.call_tool(LIST_MODELS, {})
            structured = await client.call_tool(LIST_MODELS, {"feature": "json_schema"})
            refused = await client.call_tool(CHAT, {"prompt": "x"})
        assert listed.structured_content is not None and structured.structured_content is not None
        return listed.structured_content["models"], structured.structured_content["models"], refused.is_error

    models, with_schema, chat_refused = run(scenario())
    assert [(m["provider"], m["id"]) for m in models] == [("openai", "gpt-4o-mini"),
                                                          ("anthropic", "claude-haiku-4-5")]
    openai = models[0]
    assert openai["kind"] == "openai" and openai["capabilities"] == ["chat", "chatStream"]
    assert "json_schema" in openai["features"] and openai["feature_source"] == "config"
    assert ("openai", "gpt-4o-mini") in [(m["provider"], m["id"]) for m in with_schema]
    assert chat_refused, "the grant covers listModels only"


def test_get_health_shows_model_features(box: Sandbox) -> None:
    async def scenario() -> dict[str, Any]:
        async with box.client() as client:
            health = await client.call_tool(GET_HEALTH, {})
        assert health.structured_content is not None
        return next(w for w in health.structured_content["workers"] if w["provider"] == "openai")

    openai = run(scenario())
    model = next(m for m in openai["models"] if m["id"] == "gpt-4o-mini")
    assert model["features"] == ["json_schema"] and model["feature_source"] == "config"

"""Structured output and listModels through the real stack, with the official MCP client (#16).

The openai emulator's chat model is declared in config as having structured output, so the
call reaches it; a ``schema_violation`` fault makes it answer something the schema refuses
(before the openai kind maps response_format, it answers its usual text, which is not JSON:
the gateway refuses that the same way).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.control import EmulatorControl
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


@pytest.fixture
def schema_host() -> Iterator[tuple[str, list[str]]]:
    """A schema server on 127.0.0.1 that counts the requests it gets: (base URL, paths asked)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = b'{"type": "string"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _chat_with_schema(box: Sandbox, schema: dict[str, Any], tool: str = CHAT) -> tuple[bool, dict[str, Any]]:
    async def scenario() -> tuple[bool, dict[str, Any]]:
        async with box.client() as client:
            result = await client.call_tool(tool, {
                "prompt": "Where is the Eiffel tower?", "provider": "openai", "model": "gpt-4o-mini",
                "response_format": {"type": "json_schema", "schema": schema, "name": "place"}})
        assert result.structured_content is not None, result.content
        return bool(result.is_error), result.structured_content
    return run(scenario())


def _provider_requests(box: Sandbox) -> int:
    with EmulatorControl(box.emulators.url("openai")) as control:
        return int(control.stats()["requests"])


@pytest.mark.parametrize("tool", [CHAT, CHAT_STREAM])
def test_local_references_resolve_end_to_end(box: Sandbox, tool: str) -> None:
    schema = {"type": "object", "required": ["place"], "additionalProperties": False,
              "$defs": {"place": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}},
              "properties": {"place": {"$ref": "#/$defs/place"}}}
    failed, out = _chat_with_schema(box, schema, tool)
    assert not failed, out
    assert out["json"] == {"place": {"city": "text"}}  # the emulator's instance of the referenced definition


@pytest.mark.parametrize("where", ["remote", "file", "missing"])
def test_a_reference_outside_the_schema_is_refused_before_any_call_and_never_fetched(
        box: Sandbox, schema_host: tuple[str, list[str]], where: str) -> None:
    base, hits = schema_host
    ref = {"remote": f"{base}/city.json", "file": "file:///etc/hostname", "missing": "#/$defs/city"}[where]
    schema = {"type": "object", "properties": {"place": {"type": "object", "properties": {"city": {"$ref": ref}}}}}
    with EmulatorControl(box.emulators.url("openai")) as control:
        control.reset()
    failed, out = _chat_with_schema(box, schema)
    assert failed and out["error"]["type"] == "invalid_request", out
    says = "points to nothing the schema defines" if where == "missing" else "points outside the schema"
    assert f"the reference at /properties/place/properties/city/$ref {says}" in out["error"]["message"]
    assert ref not in out["error"]["message"]
    assert _provider_requests(box) == 0  # refused before the paid call
    assert hits == []  # and the gateway fetched nothing

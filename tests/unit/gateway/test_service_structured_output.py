"""chat / chatStream with response_format on FakeBroker: the reply parsed into ``json`` or ``invalid_output``."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fake_broker import FakeCall, FakeEvent
from gateway.service import GatewayService
from gateway.tool_schemas import ChatInput
from shared import errors
from shared.models import ChatResult, TextDelta

from .service_fakes import PROVIDERS, chat, make_service, providers, run, stream

SCHEMA = {"type": "object", "required": ["city", "temp_c"],
          "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}}}
STRUCTURED = {"type": "json_schema", "schema": SCHEMA, "name": "weather"}
PROMPT = "secret prompt: the weather in Oslo as JSON"


def _config() -> Any:
    """The fake providers, each chat model declaring structured output (so the input side lets it through)."""
    edited = {name: {**p, "models": [{**m, "features": ["json_schema"]} for m in p["models"]]}
              for name, p in PROVIDERS["providers"].items()}
    return providers(providers=edited)


def _answering(text: str, finish: str = "stop") -> Any:
    def handler(call: FakeCall) -> list[FakeEvent]:
        deltas: list[FakeEvent] = [TextDelta(text[:5]), TextDelta(text[5:])] if call.request.get("stream") else []
        return [*deltas, ChatResult(text, call.request["model"], finish).to_wire()]
    return handler


def test_a_valid_reply_comes_back_parsed_in_json_and_the_request_carried_the_format() -> None:
    svc, fake = make_service(_answering('{"city": "Oslo", "temp_c": -3.5}'), _config())
    out = chat(svc, prompt=PROMPT, response_format=STRUCTURED)
    assert out.parsed == {"city": "Oslo", "temp_c": -3.5}
    assert out.structured()["json"] == {"city": "Oslo", "temp_c": -3.5}
    assert fake.calls[0].request["response_format"]["schema"] == SCHEMA


@pytest.mark.parametrize(("text", "path", "message"), [
    ("It is cold in Oslo.", "", "Expecting value: line 1 column 1 (char 0)"),
    ('{"city": "Oslo", "temp_c": "cold"}', "/temp_c", "'cold' is not of type 'number'"),
    ('{"temp_c": 1}', "", "'city' is a required property"),
])
def test_a_reply_that_fails_is_invalid_output_with_raw_text_and_first_error_and_no_prompt(
        text: str, path: str, message: str) -> None:
    svc, fake = make_service(_answering(text), _config())
    with pytest.raises(errors.InvalidOutput) as caught:
        chat(svc, prompt=PROMPT, response_format=STRUCTURED)
    payload = caught.value.to_payload()
    assert payload["raw_text"] == text and payload["validation_error"] == {"path": path, "message": message}
    assert payload["provider"] == "openai" and payload["request_id"] == fake.calls[0].request_id
    assert "secret prompt" not in str(payload)
    # Paid for and answered: not sent to the configured fallback behind the caller's back.
    assert [c.provider for c in fake.calls] == ["openai"]


def test_json_object_needs_an_object() -> None:
    svc, _ = make_service(_answering('{"any": ["thing"]}'), _config())
    assert chat(svc, response_format={"type": "json_object"}).parsed == {"any": ["thing"]}
    svc, _ = make_service(_answering('["a", "list"]'), _config())
    with pytest.raises(errors.InvalidOutput) as caught:
        chat(svc, response_format={"type": "json_object"})
    assert caught.value.validation_error == {"path": "", "message": "list is not an object"}


def test_a_stream_sends_its_text_then_is_checked_at_the_end() -> None:
    text = '{"city": "Oslo", "temp_c": 2}'
    svc, _ = make_service(_answering(text), _config())
    out, seen = stream(svc, response_format=STRUCTURED)
    assert "".join(t for _, t in seen) == text and out.parsed == {"city": "Oslo", "temp_c": 2}
    svc, _ = make_service(_answering('{"city": 7, "temp_c": 2}'), _config())
    seen_before_error: list[tuple[int, str]] = []
    with pytest.raises(errors.InvalidOutput) as caught:
        stream_into(svc, seen_before_error, response_format=STRUCTURED)
    assert "".join(t for _, t in seen_before_error) == caught.value.raw_text == '{"city": 7, "temp_c": 2}'
    assert caught.value.validation_error == {"path": "/city", "message": "7 is not of type 'string'"}


def test_a_plain_chat_has_no_json_and_sends_no_format() -> None:
    svc, fake = make_service(_answering("not json at all"), _config())
    out = chat(svc)
    assert "json" not in out.structured() and "response_format" not in fake.calls[0].request


def stream_into(svc: GatewayService, seen: list[tuple[int, str]], **args: Any) -> None:
    """A chatStream call whose progress lands in ``seen`` even when the call then fails."""
    async def progress(count: int, text: str) -> None:
        seen.append((count, text))

    run(svc.chat(ChatInput.model_validate({"prompt": "hi", **args}), None, progress))

"""Tool argument validation at the edge: clear messages naming the field, no echo of values."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.shared.inbound import validate_mcp_param_headers
from pydantic import ValidationError

from gateway.mcp_server import _validation_message
from gateway.tool_schemas import MAX_INPUT_CHARS, ChatInput, EmbedInput, HealthInput, param_header_schema
from gateway.tool_table import TOOL_LIST


def message_for(model: type, data: object) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return _validation_message(caught.value)


def test_prompt_or_messages_but_not_both_or_neither() -> None:
    assert ChatInput.model_validate({"prompt": "hi"}).prompt == "hi"
    assert "exactly one of" in message_for(ChatInput, {})
    assert "exactly one of" in message_for(ChatInput, {"prompt": "a", "messages": [{"role": "user", "content": "b"}]})


def test_wrong_types_name_the_field() -> None:
    text = message_for(ChatInput, {"prompt": "hi", "max_tokens": "lots"})
    assert text.startswith("invalid arguments: max_tokens:")
    assert "messages.0.role" in message_for(ChatInput, {"messages": [{"role": "robot", "content": "x"}]})
    assert "temperature" in message_for(ChatInput, {"prompt": "x", "temperature": 7})


def test_unknown_argument_is_refused() -> None:
    assert "colour: Extra inputs are not permitted" in message_for(ChatInput, {"prompt": "x", "colour": "red"})
    assert "x: Extra inputs" in message_for(HealthInput, {"x": 1})


def test_empty_messages_and_no_user_message() -> None:
    assert "messages" in message_for(ChatInput, {"messages": []})
    assert 'role "user"' in message_for(ChatInput, {"messages": [{"role": "system", "content": "x"}]})


def test_oversize_input_is_refused_without_echoing_it() -> None:
    secret_looking = "Z" * (MAX_INPUT_CHARS + 1)
    text = message_for(ChatInput, {"prompt": secret_looking})
    assert "prompt" in text and "ZZZZ" not in text
    text = message_for(ChatInput, {"prompt": "y" * 600_000, "system": "y" * 600_000})
    assert "input too large" in text


def test_embed_inputs() -> None:
    assert EmbedInput.model_validate({"input": "a"}).texts == ["a"]
    assert EmbedInput.model_validate({"input": ["a", "b"]}).texts == ["a", "b"]
    assert "empty" in message_for(EmbedInput, {"input": ["a", ""]})
    assert "input" in message_for(EmbedInput, {"input": []})
    assert "input" in message_for(EmbedInput, {"input": 5})


def test_every_tool_has_description_and_schemas() -> None:
    assert [t.name for t in TOOL_LIST] == ["chat", "chatStream", "embed", "getHealth", "listModels", "threads"]
    for tool in TOOL_LIST:
        assert tool.description and len(tool.description) > 20
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"


# ---- the schema handed to the SDK's Mcp-Param-* header check ---------------------------------

_ANNOTATED = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "x-mcp-header": "Model", "maxLength": 200},
        "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"},
                                                  "flag": {"type": "boolean"}}},
        "messages": {"type": "array", "items": {"type": "object", "properties": {"role": {"type": "string"}}}},
        "prompt": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
}

_CASES: list[tuple[dict[str, object], dict[str, str]]] = [
    ({}, {}),
    ({"model": "m1"}, {}),
    ({"model": "m1"}, {"mcp-param-model": "m1"}),
    ({"model": "m1"}, {"mcp-param-model": "m2"}),
    ({}, {"mcp-param-model": "m1"}),
    ({"model": "m1", "opts": {"n": 3}}, {"mcp-param-model": "m1", "mcp-param-n": "3"}),
    ({"model": "m1", "opts": {"n": 3}}, {"mcp-param-model": "m1", "mcp-param-n": "3.0"}),
    ({"model": "m1", "opts": {"n": 3}}, {"mcp-param-model": "m1", "mcp-param-n": "4"}),
    ({"model": "é"}, {"mcp-param-model": "=?base64?w6k=?="}),
    ({"model": "m1"}, {"mcp-param-model": "=?base64?!!?="}),
    ({"prompt": "hi"}, {"mcp-param-other": "x"}),
]


def _verdict(schema: dict[str, Any], arguments: dict[str, object], headers: dict[str, str]) -> object:
    rejection = validate_mcp_param_headers(schema, arguments, headers)
    return None if rejection is None else (rejection.code, rejection.message)


@pytest.mark.parametrize(("arguments", "headers"), _CASES)
def test_the_header_schema_gets_the_same_verdicts_as_the_full_schema(
        arguments: dict[str, object], headers: dict[str, str]) -> None:
    skeleton = param_header_schema(_ANNOTATED)
    assert _verdict(skeleton, arguments, headers) == _verdict(_ANNOTATED, arguments, headers)


def test_the_header_schema_keeps_only_annotated_properties() -> None:
    assert param_header_schema(_ANNOTATED) == {"type": "object", "properties": {
        "model": {"type": "string", "x-mcp-header": "Model"},
        "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}}}
    assert param_header_schema(ChatInput.model_json_schema()) == {"type": "object"}  # ours declare none today


def test_an_invalid_declaration_is_left_whole_for_the_sdk() -> None:
    bad = {"type": "object", "properties": {"o": {"type": "object", "x-mcp-header": "O"}}}
    assert param_header_schema(bad) is bad

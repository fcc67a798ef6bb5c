"""Tool argument validation at the edge: clear messages naming the field, no echo of values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.mcp_server import _TOOL_LIST, _validation_message
from gateway.tool_schemas import MAX_INPUT_CHARS, ChatInput, EmbedInput, HealthInput


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
    assert [t.name for t in _TOOL_LIST] == ["chat", "chatStream", "embed", "getHealth"]
    for tool in _TOOL_LIST:
        assert tool.description and len(tool.description) > 20
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"

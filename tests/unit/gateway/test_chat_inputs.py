"""The chat input beyond plain text (#16), checked at the edge: images, tools, formats, reasoning, sampling.

Every refusal is an ``invalid_request`` whose message names the field and the rule, and
never echoes the caller's data (image bytes above all).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import ValidationError

from gateway.chat_inputs import MAX_IMAGE_BYTES, MAX_IMAGES, MAX_IMAGES_TOTAL_BYTES, ImagePartIn
from gateway.mcp_server import _validation_message
from gateway.tool_schemas import ChatInput

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
GIF = b"GIF89a" + b"\x00" * 24
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 16


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def image(raw: bytes = PNG, mime: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "data": b64(raw), "mimeType": mime}


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, *parts]}]}


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        ChatInput.model_validate(data)
    return _validation_message(caught.value)


@pytest.mark.parametrize(("raw", "mime"), [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"),
                                           (WEBP, "image/webp")])
def test_each_accepted_image_type_is_taken_as_mcp_image_content(raw: bytes, mime: str) -> None:
    args = ChatInput.model_validate(user(image(raw, mime)))
    assert args.messages is not None and not args.plain
    part = args.messages[0].content[1]
    assert isinstance(part, ImagePartIn) and (part.data, part.mimeType, part.size) == (b64(raw), mime, len(raw))


def test_a_data_url_becomes_data_and_mime_type() -> None:
    args = ChatInput.model_validate(user({"type": "image", "url": f"data:image/png;base64,{b64(PNG)}"}))
    assert args.messages is not None
    part = args.messages[0].content[1]
    assert isinstance(part, ImagePartIn) and (part.data, part.mimeType, part.url) == (b64(PNG), "image/png", None)


@pytest.mark.parametrize(("part", "says"), [
    ({"type": "image", "url": "https://example.com/cat.png"}, "the gateway does not fetch remote images"),
    ({"type": "image", "url": "data:image/png,rawbytes"}, "data:<image type>;base64,<data>"),
    ({"type": "image", "url": "data:image/tiff;base64,AAAA"}, "image type not accepted"),
    ({"type": "image", "data": "AAAA"}, 'needs "data" (base64) and "mimeType"'),
    ({"type": "image", "data": "not base64!", "mimeType": "image/png"}, "not valid base64"),
    ({"type": "image", "data": "", "mimeType": "image/png"}, "image data is empty"),
    (image(PNG, "image/jpeg"), "image data is image/png but declared image/jpeg; send mimeType image/png"),
    (image(b"plain text, not an image"), "not a PNG, JPEG, GIF or WebP image"),
    (image(PNG, "image/bmp"), "mimeType"),
    ({"type": "image", "url": f"data:image/png;base64,{b64(PNG)}", "data": b64(PNG)}, "either"),
])
def test_a_bad_image_is_refused_saying_what_is_wrong(part: dict[str, Any], says: str) -> None:
    text = refusal(user(part))
    assert text.startswith("invalid arguments: messages.0.content") and says in text
    assert "rawbytes" not in text and "example.com" not in text


def test_image_size_and_count_limits() -> None:
    big = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG) + 1)
    assert f"image too large: {MAX_IMAGE_BYTES + 1} bytes, the limit is {MAX_IMAGE_BYTES}" in refusal(user(image(big)))
    half = PNG + b"\x00" * (MAX_IMAGES_TOTAL_BYTES // 2 + 1 - len(PNG))
    assert "images too large" in refusal(user(image(half), image(half)))
    assert f"too many images: {MAX_IMAGES + 1}" in refusal(user(*[image()] * (MAX_IMAGES + 1)))
    assert ChatInput.model_validate(user(*[image()] * MAX_IMAGES)).messages is not None


def test_images_only_in_user_messages() -> None:
    data = {"messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": [image()]}]}
    assert "images are accepted in user messages only" in refusal(data)


WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_tools_with_a_named_choice_are_accepted() -> None:
    args = ChatInput.model_validate({"prompt": "weather?", "tools": [WEATHER], "tool_choice": {"name": "get_weather"}})
    assert args.tools is not None and args.tools[0].name == "get_weather" and not args.plain


@pytest.mark.parametrize(("changes", "says"), [
    ({"tools": [{**WEATHER, "parameters": {"type": "objekt"}}]},
     "the parameters of tool 'get_weather' is not a valid JSON Schema"),
    ({"tools": [{**WEATHER, "parameters": {"type": "string"}}]}, "must be an object schema"),
    ({"tools": [{**WEATHER, "name": "get weather"}]}, "tools.0.name"),
    ({"tools": [WEATHER, WEATHER]}, "tool names must be unique"),
    ({"tools": [WEATHER], "tool_choice": {"name": "other"}}, 'tool_choice names a tool that is not in "tools"'),
    ({"tool_choice": "required"}, 'tool_choice needs "tools"'),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "Input should be 'auto', 'none' or 'required'"),
])
def test_bad_tools_are_refused_naming_the_tool_or_rule(changes: dict[str, Any], says: str) -> None:
    assert says in refusal({"prompt": "weather?", **changes})


CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}


def conversation(*tail: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "weather in Oslo?"},
                         {"role": "assistant", "content": "", "tool_calls": [CALL]}, *tail], "tools": [WEATHER]}


def test_a_tool_result_answers_an_earlier_call() -> None:
    args = ChatInput.model_validate(conversation({"role": "tool", "tool_call_id": "call_1", "content": "12 C"}))
    assert args.messages is not None and args.messages[2].tool_call_id == "call_1"


@pytest.mark.parametrize(("tail", "says"), [
    ({"role": "tool", "tool_call_id": "call_9", "content": "12 C"}, '"tool_call_id" names no call'),
    ({"role": "tool", "content": "12 C"}, 'a tool message needs "tool_call_id"'),
    ({"role": "user", "content": "x", "tool_call_id": "call_1"}, "belong to tool messages only"),
    ({"role": "user", "content": "x", "tool_calls": [CALL]}, 'only an assistant message may carry "tool_calls"'),
    ({"role": "assistant", "tool_calls": [{**CALL, "arguments": "{}"}]},
     "tool_calls.0.arguments: Input should be a valid dictionary"),
])
def test_tool_messages_must_fit_their_role_and_calls(tail: dict[str, Any], says: str) -> None:
    assert says in refusal(conversation(tail))


def test_response_format_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    args = ChatInput.model_validate({"prompt": "n?", "response_format": {"type": "json_schema", "schema": schema}})
    assert args.response_format is not None and args.response_format.type == "json_schema"
    assert 'response_format.schema is not a valid JSON Schema' in refusal(
        {"prompt": "n?", "response_format": {"type": "json_schema", "schema": {"type": 5}}})
    assert "response_format" in refusal({"prompt": "n?", "response_format": {"type": "xml"}})
    assert 'give "effort"' in refusal({"prompt": "n?", "reasoning": {"include_thoughts": True}})
    assert "reasoning.effort" in refusal({"prompt": "n?", "reasoning": {"effort": "extreme"}})


def test_sampling_parameters_and_their_limits() -> None:
    args = ChatInput.model_validate({"prompt": "x", "stop": ["a", "b", "c", "d"], "top_p": 0.5, "seed": 7,
                                     "presence_penalty": -1, "frequency_penalty": 2, "drop_unsupported": True})
    assert not args.plain and args.drop_unsupported
    assert "stop" in refusal({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})
    assert "top_p" in refusal({"prompt": "x", "top_p": 1.5})
    assert "presence_penalty" in refusal({"prompt": "x", "presence_penalty": 3})


def test_a_plain_chat_is_marked_plain() -> None:
    assert ChatInput.model_validate({"prompt": "hi", "max_tokens": 5, "temperature": 0.2}).plain
    assert ChatInput.model_validate({"messages": [{"role": "system", "content": "be brief"},
                                                  {"role": "user", "content": "hi"}]}).plain
    assert not ChatInput.model_validate(user()).plain


def test_the_input_schema_stays_plain_json_schema_for_strict_clients() -> None:
    """A valid draft 2020-12 schema, without OpenAPI's "discriminator" keyword or a bare
    true/false schema (the Inspector's --strict error), whatever the new fields added."""
    schema = ChatInput.model_json_schema()
    Draft202012Validator.check_schema(schema)
    assert '"discriminator"' not in json.dumps(schema)
    assert {"tools", "tool_choice", "response_format", "reasoning", "stop", "drop_unsupported"} <= set(
        schema["properties"])

    def bare_booleans(node: Any, keyword: str | None = None) -> int:
        if isinstance(node, bool):
            return int(keyword != "additionalProperties")
        if isinstance(node, dict):
            return sum(bare_booleans(v, k) for k, v in node.items() if k not in ("default", "const", "enum"))
        if isinstance(node, list):
            return sum(bare_booleans(v, keyword) for v in node)
        return 0
    assert bare_booleans(schema) == 0


def test_schemas_with_references_outside_them_are_refused_before_any_call() -> None:
    remote = {"type": "object", "properties": {"city": {"$ref": "https://schemas.example.invalid/city.json"}}}
    said = refusal({"prompt": "n?", "response_format": {"type": "json_schema", "schema": remote}})
    assert said == ("invalid arguments: response_format.json_schema: response_format.schema: the reference at "
                    "/properties/city/$ref points outside the schema; only references inside it (#/$defs/...) "
                    "are followed: the gateway fetches nothing")
    missing = {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"$ref": "#/$defs/city"}}}}
    said = refusal({"prompt": "n?", "tools": [missing]})
    assert ("the parameters of tool 'get_weather': the reference at /properties/city/$ref points to nothing "
            "the schema defines") in said
    local = {"type": "object", "$defs": {"city": {"type": "string"}},
             "properties": {"city": {"$ref": "#/$defs/city"}}}
    args = ChatInput.model_validate({"prompt": "n?", "tools": [{**WEATHER, "parameters": local}],
                                     "response_format": {"type": "json_schema", "schema": local}})
    assert args.response_format is not None and args.tools is not None

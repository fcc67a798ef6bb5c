"""Structured output: a reply parsed as JSON and checked against the caller's schema."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest

from gateway.structured_output import MAX_ERROR_MESSAGE, parse_reply
from shared import errors
from shared.chat_parts import ResponseFormat

PERSON = ResponseFormat("json_schema", {
    "type": "object", "additionalProperties": False, "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
                   "tags": {"type": "array", "items": {"type": "string"}}}})


def _refused(text: str, fmt: ResponseFormat, finish_reason: str | None = None) -> errors.InvalidOutput:
    with pytest.raises(errors.InvalidOutput) as caught:
        parse_reply(text, fmt, finish_reason)
    return caught.value


def test_a_matching_reply_is_returned_parsed() -> None:
    assert parse_reply('{"name": "Ada", "age": 36, "tags": ["x"]}', PERSON) == {
        "name": "Ada", "age": 36, "tags": ["x"]}


def test_a_reply_that_is_not_json_carries_the_raw_text_and_the_parser_error() -> None:
    error = _refused("Sure! Here is the JSON: {", PERSON)
    assert error.raw_text == "Sure! Here is the JSON: {"
    assert error.validation_error is not None and error.validation_error["path"] == ""
    assert "Expecting value" in error.validation_error["message"]
    assert error.message.startswith("the reply is not JSON")
    # NaN is not JSON, even though Python's parser would take it.
    assert _refused('{"name": "a", "age": NaN}', PERSON).validation_error == {
        "path": "", "message": "NaN is not valid JSON"}


def test_a_reply_cut_off_at_max_tokens_says_so() -> None:
    assert "raise it" in _refused('{"name": "Ad', PERSON, finish_reason="length").message


@pytest.mark.parametrize(("text", "path", "message"), [
    ('{"name": "Ada", "age": "old"}', "/age", "'old' is not of type 'integer'"),
    ('{"name": "Ada"}', "", "'age' is a required property"),
    ('{"name": "Ada", "age": 3, "tags": ["ok", 7]}', "/tags/1", "7 is not of type 'string'"),
    ('{"name": "Ada", "age": -1}', "/age", "-1 is less than the minimum of 0"),
])
def test_a_schema_violation_names_the_first_error_by_path(text: str, path: str, message: str) -> None:
    error = _refused(text, PERSON)
    assert error.validation_error == {"path": path, "message": message}
    assert error.raw_text == text and error.type == "invalid_output"


def test_json_object_needs_an_object_and_ignores_any_schema() -> None:
    fmt = ResponseFormat("json_object")
    assert parse_reply('{"anything": [1, 2]}', fmt) == {"anything": [1, 2]}
    for text, kind in (("[1, 2]", "list"), ('"a string"', "str"), ("3", "int")):
        assert _refused(text, fmt).validation_error == {"path": "", "message": f"{kind} is not an object"}


def test_pointer_tokens_are_escaped_and_long_messages_shortened() -> None:
    fmt = ResponseFormat("json_schema", {"type": "object", "properties": {"a/b~c": {"type": "string",
                                                                                    "maxLength": 1}}})
    error = _refused('{"a/b~c": "' + "x" * 1000 + '"}', fmt)
    assert error.validation_error is not None
    assert error.validation_error["path"] == "/a~1b~0c"
    assert len(error.validation_error["message"]) == MAX_ERROR_MESSAGE
    assert error.validation_error["message"].endswith("...")


@pytest.mark.parametrize("schema", [{"$ref": "http://127.0.0.1:9/schema.json"}, {"$ref": "#/$defs/missing"}])
def test_a_reference_outside_the_schema_is_not_fetched_but_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidRequest, match="cannot be resolved"):
        parse_reply("{}", ResponseFormat("json_schema", schema))


def test_references_inside_the_schema_resolve() -> None:
    fmt = ResponseFormat("json_schema", {"$defs": {"n": {"type": "integer"}}, "type": "object",
                                         "properties": {"n": {"$ref": "#/$defs/n"}}})
    assert parse_reply('{"n": 1}', fmt) == {"n": 1}
    assert _refused('{"n": "1"}', fmt).validation_error == {"path": "/n", "message": "'1' is not of type 'integer'"}


def test_validation_never_retrieves_a_reference() -> None:
    """Even a schema that got past the input check is validated without fetching anything."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = b'{"type": "integer"}'
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
        url = f"http://127.0.0.1:{server.server_address[1]}/n.json"
        fmt = ResponseFormat("json_schema", {"type": "object", "properties": {"n": {"$ref": url}}})
        with pytest.raises(errors.InvalidRequest, match="cannot be resolved"):
            parse_reply('{"n": 1}', fmt)
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []

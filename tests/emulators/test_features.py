"""emulators.features: the deterministic decisions every emulator shares."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from emulators.features import SCHEMA_VIOLATION, decoded_size, image_note, json_reply, sample_instance

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                      "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                                      "ok": {"type": "boolean"}, "score": {"type": ["number", "null"]}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}, "v": {"const": 3},
                                      "x": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                                      "ref": {"$ref": "#/$defs/Point"}},
     "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}}},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_sample_matches_its_schema(schema: dict[str, Any]) -> None:
    jsonschema.validate(sample_instance(schema), schema)
    jsonschema.validate(orjson.loads(json_reply(schema, "ignored")), schema)


def test_a_violation_matches_no_closed_schema() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(orjson.loads(json_reply(SCHEMAS[0], "x", violate=True)), SCHEMAS[0])
    assert orjson.loads(json_reply(None, "hi")) == {"reply": "hi"}
    assert SCHEMA_VIOLATION == {"unexpected": True}


def test_images_are_described_by_type_and_decoded_size() -> None:
    assert decoded_size("aGVsbG8=") == 5 and decoded_size("not base64!") is None
    note = image_note([("image/png", 5), ("image/jpeg", 7)])
    assert note == "I see 2 images (image/png 5 bytes, image/jpeg 7 bytes). "
    assert image_note([]) == ""

"""References in a caller's schema: local ones that resolve pass, anything else is named by pointer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.schema_refs import ref_problem

DEFS = {"$defs": {"city": {"type": "string"}, "a/b": {"type": "integer"}}}


@pytest.mark.parametrize("schema", [
    {**DEFS, "type": "object", "properties": {"c": {"$ref": "#/$defs/city"}}},
    {"definitions": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/definitions/n"}},
    {**DEFS, "properties": {"x": {"$ref": "#/$defs/a~1b"}}},  # an escaped pointer token
    {**DEFS, "properties": {"x": {"$ref": "#/$defs/a%7E1b"}}},  # percent-encoded, as URI fragments may be
    {"type": "object", "properties": {"child": {"$ref": "#"}}},  # the whole schema, recursively
    {"$defs": {"p": {"$anchor": "point", "type": "object"}}, "allOf": [{"$ref": "#point"}]},
    {"properties": {"tags": {"type": "array", "prefixItems": [{"$ref": "#/properties/tags"}]}}},
    # An embedded resource: its "#/..." resolves in itself, not in the root.
    {"$defs": {"inner": {"$id": "urn:x:inner", "$defs": {"d": {"type": "null"}}, "$ref": "#/$defs/d"}}},
    # "$ref" as data or as a property name is not a reference.
    {"enum": [{"$ref": "http://example.invalid/x"}], "default": {"$ref": "file:///etc/passwd"}},
    {"type": "object", "properties": {"$ref": {"type": "string"}}},
])
def test_references_inside_the_schema_pass(schema: dict[str, Any]) -> None:
    assert ref_problem(schema) is None


@pytest.mark.parametrize(("schema", "pointer"), [
    ({"$ref": "http://127.0.0.1:9/schema.json"}, "/$ref"),
    ({"properties": {"a": {"$ref": "file:///etc/passwd"}}}, "/properties/a/$ref"),
    ({"items": {"$ref": "other.json#/$defs/x"}}, "/items/$ref"),
    ({"anyOf": [{"type": "null"}, {"$dynamicRef": "urn:example:meta"}]}, "/anyOf/1/$dynamicRef"),
    ({"properties": {"a/b": {"$ref": "https://example.invalid/s"}}}, "/properties/a~1b/$ref"),
])
def test_a_reference_outside_the_schema_is_named_by_its_pointer(schema: dict[str, Any], pointer: str) -> None:
    problem = ref_problem(schema)
    assert problem == (f"the reference at {pointer} points outside the schema; only references inside it "
                       "(#/$defs/...) are followed: the gateway fetches nothing")


@pytest.mark.parametrize(("schema", "pointer"), [
    ({**DEFS, "properties": {"c": {"$ref": "#/$defs/country"}}}, "/properties/c/$ref"),
    ({"definitions": {}, "items": {"$ref": "#/definitions/n"}}, "/items/$ref"),
    ({**DEFS, "allOf": [{"$ref": "#nowhere"}]}, "/allOf/0/$ref"),
    ({"type": "object", "properties": {"x": {"$ref": "#/type"}}}, "/properties/x/$ref"),  # not a schema
    ({"enum": [1, 2], "items": {"$ref": "#/enum/5"}}, "/items/$ref"),
    # The root's definitions are not visible from inside an embedded resource.
    ({**DEFS, "$defs": {**DEFS["$defs"], "inner": {"$id": "urn:x:inner", "$ref": "#/$defs/city"}}},
     "/$defs/inner/$ref"),
])
def test_a_reference_to_a_missing_definition_is_named_by_its_pointer(schema: dict[str, Any], pointer: str) -> None:
    assert ref_problem(schema) == f"the reference at {pointer} points to nothing the schema defines"


def test_the_reference_text_is_never_echoed() -> None:
    problem = ref_problem({"$ref": "https://secret-host.invalid/token=abc"})
    assert problem is not None and "secret" not in problem and "abc" not in problem

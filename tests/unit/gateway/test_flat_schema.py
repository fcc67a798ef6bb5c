"""Flattened output schemas accept exactly what pydantic's schemas accept, and are flat."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter

from gateway.flat_schema import flatten
from gateway.tool_schemas import (
    ChatOutput,
    EmbedOutput,
    HealthOutput,
    ModelOut,
    RouteOut,
    SkippedRouteOut,
    StoreHealthOut,
    ToolErrorEnvelope,
    ToolErrorOut,
    UsageOut,
    WorkerHealthOut,
    output_schema,
)

_ROUTE = RouteOut(provider="openai", model="gpt-4o-mini", reason="default",
                  fallback_from=[SkippedRouteOut(provider="lmstudio", model="qwen", reason="worker down")])
_USAGE = UsageOut(input_tokens=3, output_tokens=None, total_tokens=None)

SAMPLES: dict[type[BaseModel], BaseModel] = {
    ChatOutput: ChatOutput(text="hi", model="m", provider="openai", finish_reason=None, usage=_USAGE,
                           latency_ms=1.5, request_id="r", route=_ROUTE, chunks=3, notifications=0),
    EmbedOutput: EmbedOutput(vectors=[[0.1, 0.2]], dimensions=2, model="e", provider="openai", usage=_USAGE,
                             latency_ms=2.0, request_id="r", route=_ROUTE),
    HealthOutput: HealthOutput(status="degraded", version="1", uptime_s=3.0, workers=[WorkerHealthOut(
        provider="lmstudio", kind="lmstudio", up=True, status="ready", heartbeat_age_s=None,
        capabilities=["chat"], models=[ModelOut(id="q", capabilities=["chat"], loaded=False)],
        last_error=None, inflight=0, restarts_seen=1, circuit={"state": "closed"}, counters={"retries": 2})],
        store=StoreHealthOut(backend="sqlite", ok=False, detail="store /x/store.db is locked by another process")),
}
_ERROR = ToolErrorEnvelope(error=ToolErrorOut(type="rate_limited", message="slow down", retryable=True,
                                              retry_after_s=2.0, partial_text=None))


def _original(success: type[BaseModel]) -> dict[str, Any]:
    either: Any = success | ToolErrorEnvelope
    schema: dict[str, Any] = TypeAdapter(either).json_schema()
    schema["type"] = "object"
    return schema


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _near_misses(instance: dict[str, Any]) -> Iterator[Any]:
    """The instance itself, then one change at a time: each value swapped for another type, each key dropped."""
    yield instance
    for path in _paths(instance):
        if not path:
            continue
        for replacement in (None, "text", 1, 1.5, True, [], {}, [1], {"k": "v"}):
            changed = copy.deepcopy(instance)
            parent = changed
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = replacement
            yield changed
            if isinstance(parent, dict):
                del parent[path[-1]]
                yield changed
    yield {**instance, "extra": 1}
    yield []


@pytest.mark.parametrize("success", list(SAMPLES), ids=lambda m: m.__name__)
def test_flat_schema_accepts_exactly_what_the_original_accepts(success: type[BaseModel]) -> None:
    original = Draft202012Validator(_original(success))
    flat = Draft202012Validator(output_schema(success))
    checked = 0
    for base in (SAMPLES[success].model_dump(mode="json"), _ERROR.model_dump(mode="json")):
        assert flat.is_valid(base)
        for instance in _near_misses(base):
            assert flat.is_valid(instance) == original.is_valid(instance), instance
            checked += 1
    assert checked > 200


@pytest.mark.parametrize("success", list(SAMPLES), ids=lambda m: m.__name__)
def test_flat_schema_has_no_references_titles_or_two_branch_nullables(success: type[BaseModel]) -> None:
    text = json.dumps(output_schema(success))
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text
    assert '{"type": "null"}' not in text
    Draft202012Validator.check_schema(output_schema(success))


def test_a_property_named_title_and_data_values_survive() -> None:
    schema = {"type": "object", "title": "Thing", "properties": {
        "title": {"type": "string", "title": "Title"},
        "options": {"type": "object", "default": {"title": "kept", "$ref": "not a reference"}},
        "kind": {"enum": [{"title": "also kept"}]},
    }}
    assert flatten(schema) == {"type": "object", "properties": {
        "title": {"type": "string"},
        "options": {"type": "object", "default": {"title": "kept", "$ref": "not a reference"}},
        "kind": {"enum": [{"title": "also kept"}]},
    }}


def test_keywords_beside_a_reference_are_kept() -> None:
    schema = {"$defs": {"Inner": {"type": "object", "description": "inner", "properties": {"a": {"type": "integer"}}}},
              "type": "object", "properties": {"x": {"$ref": "#/$defs/Inner", "description": "outer"}}}
    assert flatten(schema)["properties"]["x"] == {"type": "object", "description": "outer",
                                                   "properties": {"a": {"type": "integer"}}}


def test_only_whole_type_branches_are_merged() -> None:
    kept = {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}
    assert flatten(kept) == kept
    assert flatten({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == {"type": ["integer", "null"]}


def test_recursive_and_foreign_references_are_refused() -> None:
    class Node(BaseModel):
        children: list[Node]

    with pytest.raises(ValueError, match="recursive"):
        flatten(Node.model_json_schema())
    with pytest.raises(ValueError, match="only references"):
        flatten({"$ref": "https://example.com/schema"})

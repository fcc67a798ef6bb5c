"""References in a caller's JSON Schema: only ones inside the schema, and only ones that resolve.

A ``response_format`` schema or a tool's ``parameters`` schema may use ``$ref`` (and
``$dynamicRef``/``$recursiveRef``) to reuse a definition: ``#/$defs/...``,
``#/definitions/...``, ``#`` or an anchor (``#name``). Those are checked here, before any
provider is paid: each must land on a schema in the same document (the nearest enclosing
``$id`` resource, as JSON Schema resolves it). Any other reference (``http:``, ``file:``,
``urn:``, a relative ``other.json``) is refused: the gateway fetches nothing. A refusal
names the JSON Pointer (RFC 6901) of the offending keyword, never the reference's text.

The walk follows the keywords that hold subschemas (drafts 4 to 2020-12), so a ``"$ref"``
key inside ``enum``, ``const``, ``default`` or ``examples`` values is data, not a
reference, and a property named ``$ref`` under ``properties`` is a name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

__all__ = ["ref_problem"]

_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_ONE_SCHEMA = ("additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if", "items",
               "not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_MAPS = ("$defs", "definitions", "dependentSchemas", "dependencies", "patternProperties", "properties")
_SCHEMA_LISTS = ("allOf", "anyOf", "items", "oneOf", "prefixItems")
_MISSING = object()


def ref_problem(schema: Any) -> str | None:
    """Why ``schema`` has a reference the gateway will not follow, or None when every one
    resolves inside it. The reason starts with the keyword's JSON Pointer."""
    for pointer, ref, resource in _refs(schema, "", schema):
        if not ref.startswith("#"):
            return (f"the reference at {pointer} points outside the schema; only references inside it "
                    "(#/$defs/...) are followed: the gateway fetches nothing")
        if not isinstance(_target(resource, ref[1:]), dict | bool):
            return f"the reference at {pointer} points to nothing the schema defines"
    return None


def _refs(node: Any, pointer: str, resource: Any) -> Iterator[tuple[str, str, Any]]:
    """Each (pointer of the keyword, its value, the resource it resolves in) under ``node``."""
    if not isinstance(node, dict):
        return
    node_id = node.get("$id")
    if pointer and isinstance(node_id, str) and not node_id.startswith("#"):
        resource = node  # an embedded resource: its own "#..." references resolve inside it
    for keyword in _REF_KEYWORDS:
        if isinstance(node.get(keyword), str):
            yield f"{pointer}/{_escape(keyword)}", node[keyword], resource
    for _keyword, child_pointer, child in _children(node, pointer):
        yield from _refs(child, child_pointer, resource)


def _children(node: dict[str, Any], pointer: str) -> Iterator[tuple[str, str, Any]]:
    """The subschemas directly under ``node``, with their pointers."""
    for keyword in _ONE_SCHEMA:
        if isinstance(node.get(keyword), dict):
            yield keyword, f"{pointer}/{_escape(keyword)}", node[keyword]
    for keyword in _SCHEMA_MAPS:
        value = node.get(keyword)
        if isinstance(value, dict):
            for name, sub in value.items():
                yield keyword, f"{pointer}/{_escape(keyword)}/{_escape(name)}", sub
    for keyword in _SCHEMA_LISTS:
        value = node.get(keyword)
        if isinstance(value, list):
            for index, sub in enumerate(value):
                yield keyword, f"{pointer}/{_escape(keyword)}/{index}", sub


def _target(resource: Any, fragment: str) -> Any:
    """What ``#fragment`` names in ``resource``: a JSON Pointer, or a plain-name anchor."""
    if not fragment:
        return resource
    if fragment.startswith("/"):
        return _follow(resource, unquote(fragment))
    return _anchor(resource, fragment, resource)


def _follow(document: Any, pointer: str) -> Any:
    """The value at ``pointer`` in ``document``, or ``_MISSING``."""
    value = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return _MISSING
    return value


def _anchor(node: Any, name: str, resource: Any) -> Any:
    """The subschema of ``resource`` carrying anchor ``name`` ($anchor, $dynamicAnchor, or a
    draft-7 ``"$id": "#name"``), or ``_MISSING``; embedded resources are not searched."""
    if not isinstance(node, dict):
        return _MISSING
    if node is not resource and isinstance(node.get("$id"), str) and not node["$id"].startswith("#"):
        return _MISSING
    if name in (node.get("$anchor"), node.get("$dynamicAnchor")) or node.get("$id") == f"#{name}":
        return node
    for _key, _pointer, child in _children(node, ""):
        found = _anchor(child, name, resource)
        if found is not _MISSING:
            return found
    return _MISSING


def _escape(token: str | int) -> str:
    """One JSON Pointer (RFC 6901) reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")

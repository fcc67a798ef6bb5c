"""Deterministic behaviour for the chat features beyond text (issue #16), shared by every emulator.

Each emulator parses its own wire format and renders its own replies; what the emulated
model *decides* is the same everywhere, so one matrix test can predict it on every kind:

* **Tools.** When tools are offered and the choice allows a call (auto, required, or a
  named tool) and the conversation's last message is the user's, the model calls one
  tool: the named one, else the first, with arguments built from its parameter schema
  (``sample_instance``). After a tool result it answers in text quoting the result
  (``after_tool_result``).
* **Structured output.** With a JSON schema the reply text is ``sample_instance(schema)``
  as compact JSON; with plain JSON mode it is ``{"reply": <the usual text>}``. The fault
  mode ``schema_violation`` makes it a JSON object that matches no schema we send.
* **Images.** The reply starts with ``image_note``: how many images, their types and
  decoded sizes, so a test sees each image arrived whole.
* **Reasoning.** A reasoning request "thinks" ``thinking_text`` first; its word count is
  the reasoning token count, reported in usage and included in the output tokens.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = [
    "SCHEMA_VIOLATION",
    "after_tool_result",
    "decoded_size",
    "image_note",
    "json_reply",
    "sample_instance",
    "thinking_text",
]

# What a ``schema_violation`` fault makes the model answer instead of a matching object.
SCHEMA_VIOLATION: dict[str, Any] = {"unexpected": True}

_SAMPLES: dict[str, Any] = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "null": None}


def sample_instance(schema: Mapping[str, Any]) -> Any:
    """A small instance that ``schema`` accepts, deterministically (the subset providers take:
    type, properties/required, items, enum, const, anyOf/oneOf, minItems, $defs refs)."""
    return _sample(schema, schema.get("$defs", {}) or schema.get("definitions", {}))


def _sample(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Any:
    if "$ref" in schema:
        return _sample(defs[str(schema["$ref"]).rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _sample(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties", {})
        return {name: _sample(sub, defs) for name, sub in properties.items()}
    if kind == "array":
        return [_sample(schema.get("items", {"type": "string"}), defs) for _ in range(int(schema.get("minItems", 1)))]
    return _SAMPLES.get(str(kind), "text")


def json_reply(schema: Mapping[str, Any] | None, text: str, *, violate: bool = False) -> str:
    """The reply text under structured output: an instance of ``schema``, or ``{"reply": text}``."""
    if violate:
        value: Any = SCHEMA_VIOLATION
    else:
        value = sample_instance(schema) if schema is not None else {"reply": text}
    return orjson.dumps(value).decode()


def after_tool_result(name: str | None, result: str) -> str:
    """What the model says once a tool's result came back."""
    return f"The tool {name or 'call'} returned: {' '.join(result.split())[:200]}"


def decoded_size(data: str) -> int | None:
    """Bytes in base64 ``data``; None if it is not valid base64 (an emulator answers 400)."""
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None


def image_note(images: Sequence[tuple[str, int]]) -> str:
    """"I see 2 images (image/png 68 bytes, image/jpeg 1024 bytes)." for (mime type, size) pairs."""
    if not images:
        return ""
    listed = ", ".join(f"{mime} {size} bytes" for mime, size in images)
    return f"I see {len(images)} image{'s' if len(images) > 1 else ''} ({listed}). "


def thinking_text(user_text: str, effort: str | None = None) -> str:
    """The emulated model's thinking before it answers (its words are the reasoning tokens);
    a model thinking adaptively says at which effort, so a test can tell the two modes apart."""
    about = ' '.join(user_text.split()[:12])
    if effort is not None:
        return f"Thinking ({effort} effort) about: {about}. The answer follows."
    return f"Thinking about: {about}. The answer follows."

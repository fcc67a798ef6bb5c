"""Structured output: a reply to a call with ``response_format``, parsed and checked.

The worker's adapter asks the provider for JSON in its own way and returns the reply's
text as it came; the gateway, the one place that knows what the caller asked for, parses
it and validates it against the caller's schema with the ``jsonschema`` library. A reply
that is not JSON (for ``json_object``: not a JSON object) or does not match is
``invalid_output``, carrying the reply and the most relevant validation error (path and
message), never the prompt.

One validator is built per call and not cached: building one costs about 15 us against
about 100 us for validating a small reply, and a cache keyed by the schema's hash would
spend part of that saving on hashing (measured; see the decision notes). Only references
inside the schema resolve: the input side (``gateway.schema_refs``) refuses any other
before the call, and the validator is given an empty registry, so it could not fetch one
anyway (jsonschema's default registry would, over HTTP or from a ``file:`` URL).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable

from shared import errors
from shared.chat_parts import ResponseFormat

__all__ = ["MAX_ERROR_MESSAGE", "parse_reply"]

# A validation message may quote the offending value; keep the payload's line readable.
MAX_ERROR_MESSAGE = 300
_NO_RETRIEVAL: Registry[Any] = Registry()


def parse_reply(text: str, fmt: ResponseFormat, finish_reason: str | None = None) -> Any:
    """``text`` parsed as JSON and checked against ``fmt``; ``invalid_output`` if it is not."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, and NaN/Infinity refused by _no_constant
        cut = " (the reply stopped at max_tokens: raise it)" if finish_reason == "length" else ""
        raise _invalid(f"the reply is not JSON{cut}", text, "", _short(str(exc))) from None
    if fmt.type == "json_object" or fmt.schema is None:
        if not isinstance(value, dict):
            raise _invalid("the reply is JSON but not an object", text, "", f"{type(value).__name__} is not an object")
        return value
    error = _first_error(fmt.schema, value)
    if error is not None:
        path = "".join(f"/{_escape(part)}" for part in error.absolute_path)
        raise _invalid(f"the reply does not match the schema at {path or 'its top level'}", text, path,
                       _short(error.message))
    return value


def _first_error(schema: dict[str, Any], value: Any) -> ValidationError | None:
    """The most relevant error (``jsonschema.exceptions.best_match``), or None when ``value`` matches."""
    # An explicit registry that retrieves nothing: jsonschema's default one fetches remote refs.
    validator = validator_for(schema, default=Draft202012Validator)(schema, registry=_NO_RETRIEVAL)
    try:
        return best_match(validator.iter_errors(value))
    except Unresolvable as exc:
        raise errors.InvalidRequest(
            f"response_format.schema has a reference that cannot be resolved ({_short(str(exc))}); only "
            "references inside the schema are followed") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _escape(part: str | int) -> str:
    """One JSON Pointer (RFC 6901) reference token."""
    return str(part).replace("~", "~0").replace("/", "~1")


def _short(message: str) -> str:
    return message if len(message) <= MAX_ERROR_MESSAGE else message[:MAX_ERROR_MESSAGE - 3] + "..."


def _invalid(message: str, text: str, path: str, detail: str) -> errors.InvalidOutput:
    return errors.InvalidOutput(f"{message}: {detail}", raw_text=text,
                                validation_error={"path": path, "message": detail})

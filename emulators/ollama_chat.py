"""The Ollama emulator's chat beyond plain text (issue #16): checking the request's features
in Ollama's wire format and deciding the answer with ``emulators.features``.

Checks follow the server (``api/types.go``, ``server/routes.go``): ``format`` is ``"json"`` or a
JSON Schema object; ``think`` is a boolean or ``high|medium|low|max``; ``images`` are base64
strings; ``tools`` are ``{type: "function", function{name, ...}}``; options have Go's types.
A model without the ``tools`` capability answers 400 ``"x" does not support tools``, one without
``thinking`` asked to think 400 ``"x" does not support thinking``; a thinking model thinks
unless told ``think: false``, as Ollama's do.

Assumptions not checked against a live server: images sent to a model without ``vision`` are
ignored (Ollama does not check that capability on chat); an invalid ``format`` is a 400 here
(the server fails it once the runner gets it).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any

import orjson

from emulators import features
from emulators.base import ApiError
from emulators.content import Reply, count_words, last_user_text, make_reply, message_text

__all__ = ["Answer", "check_features", "check_options", "decide", "sniff_mime"]

_THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_RULE = '(must be "high", "medium", "low", "max", true, or false)'
_FLOAT_OPTIONS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_OPTIONS = ("num_predict", "seed")
_WORD = re.compile(r"\S+\s*")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]")
# Magic numbers of the image types Ollama takes (it sniffs; the wire carries no media type).
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def check_options(options: dict[str, Any]) -> None:
    """Go's option types: numbers for the floats and integers, an array of strings for ``stop``."""
    for name in (*_FLOAT_OPTIONS, *_INT_OPTIONS):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _bad(f'option "{name}" must be of type {"integer" if name in _INT_OPTIONS else "float32"}')
    stop = options.get("stop")
    if stop is not None and not isinstance(stop, list):
        raise _bad('option "stop" must be of type array')
    if stop is not None and not all(isinstance(s, str) for s in stop):
        raise _bad('option "stop" must be of an array of strings')


def check_features(body: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    """``format``, ``think``, ``tools`` and each message's ``images`` and ``tool_calls``."""
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        quoted = orjson.dumps(orjson.dumps(fmt).decode()).decode()  # Go's %q of the raw JSON
        raise _bad(f'invalid format: {quoted}; expected "json" or a valid JSON Schema object')
    think = body.get("think")
    if isinstance(think, str) and think not in _THINK_LEVELS:
        raise _bad(f'invalid think value: "{think}" {_THINK_RULE}')
    if think is not None and not isinstance(think, bool | str):
        raise _bad(f"think must be a boolean or string {_THINK_RULE}")
    tools = body.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(_is_tool(t) for t in tools)):
        raise _bad("json: cannot unmarshal tools: each tool is {type: function, function{name, parameters}}")
    for message in messages:
        _check_message(message)


def _is_tool(tool: Any) -> bool:
    function = tool.get("function") if isinstance(tool, dict) else None
    return tool.get("type", "function") == "function" and isinstance(function, dict) \
        and isinstance(function.get("name"), str) and isinstance(function.get("parameters", {}), dict)


def _check_message(message: dict[str, Any]) -> None:
    images = message.get("images")
    if images is not None:
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            raise _bad("json: cannot unmarshal images: each image is a base64 string")
        for data in images:
            if features.decoded_size(data) is None:
                raise _bad(f"illegal base64 data at input byte {_first_bad(data)}")
    calls = message.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(
            isinstance(c, dict) and isinstance(c.get("function"), dict)
            and isinstance(c["function"].get("name"), str)
            and isinstance(c["function"].get("arguments", {}), dict) for c in calls)):
        raise _bad("json: cannot unmarshal tool_calls: each is {function{name, arguments{}}}")


def _first_bad(data: str) -> int:
    return next((i for i, ch in enumerate(data) if not _BASE64.fullmatch(ch)), len(data))


def sniff_mime(data: str) -> str:
    """The media type of base64 image ``data`` by its magic number (as Ollama finds it)."""
    head = base64.b64decode(data[:24] + "=" * (-len(data[:24]) % 4), validate=False)
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    return "image/webp" if head[8:12] == b"WEBP" else "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the emulated model answers: text (maybe JSON), its thinking, its tool calls."""

    reply: Reply
    thinking: str
    tool_calls: list[dict[str, Any]]

    @property
    def output_tokens(self) -> int:
        return self.reply.output_tokens + count_words(self.thinking)


def decide(body: dict[str, Any], messages: list[dict[str, Any]], capabilities: tuple[str, ...], label: str,
           num_predict: int | None, violate: bool) -> Answer:
    """The answer ``features`` decides for this request, rendered for Ollama."""
    user_text = last_user_text(messages)
    think = body.get("think")
    thinking = features.thinking_text(user_text) if think or (think is None and "thinking" in capabilities) \
        else ""
    last = messages[-1]
    tools = body.get("tools") or []
    if tools and last.get("role") == "user":
        function = tools[0]["function"]
        call = {"id": f"call_{secrets.token_hex(4)}", "function": {
            "index": 0, "name": function["name"], "arguments": features.sample_instance(function.get("parameters")
                                                                                        or {})}}
        return Answer(Reply("", (), False), thinking, [call])
    if last.get("role") == "tool":
        text = features.after_tool_result(last.get("tool_name"), message_text(last.get("content")))
    else:
        text = make_reply(label, user_text).text
    if "vision" in capabilities:
        text = features.image_note(_images(messages)) + text
    fmt = body.get("format")
    if fmt:
        text = features.json_reply(fmt if isinstance(fmt, dict) else None, text, violate=violate)
    return Answer(_as_reply(text, num_predict), thinking, [])


def _images(messages: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(sniff_mime(data), features.decoded_size(data) or 0)
            for m in messages for data in m.get("images") or []]


def _as_reply(text: str, max_tokens: int | None) -> Reply:
    """``text`` as word deltas, cut to ``max_tokens`` words (as ``content.make_reply`` does)."""
    words = _WORD.findall(text)
    truncated = max_tokens is not None and 0 < max_tokens < len(words)
    if truncated:
        words = words[:max_tokens]
        words[-1] = words[-1].rstrip()
    return Reply("".join(words), tuple(words), truncated)

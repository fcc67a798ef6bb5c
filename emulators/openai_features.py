"""The chat features beyond text in the OpenAI Chat Completions wire format (issue #16).

Parsing checks each feature the way the real API does and raises its 400 for malformed
input: sampling parameters (``stop`` up to 4, ``top_p``, ``seed``, the two penalties),
``response_format`` (``json_schema`` / ``json_object``), ``tools`` and ``tool_choice``,
the messages that carry tool calls and results, images as ``image_url`` data URLs, and
``reasoning_effort`` (only on a reasoning model). What the emulated model then answers
comes from ``emulators.features``, like every other emulator's; LM Studio shares all of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from emulators import features
from emulators.base import ApiError, new_id
from emulators.content import ECHO_LIMIT_CHARS, Reply, count_words, last_user_text, message_text

__all__ = ["PLAIN", "Answer", "ChatFeatures", "ToolCallOut", "answer", "from_reply", "parse_features"]

MAX_STOP = 4
# reasoning_effort values: GPT-5's minimal..high, and GPT-6's none (no reasoning), xhigh and max.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|gif|webp));base64,(.*)$", re.DOTALL)
_WORD = re.compile(r"\S+\s*")


def _invalid(param: str, why: str, code: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", f"Invalid value for '{param}': {why}", param=param, code=code)


def _missing(param: str) -> ApiError:
    return ApiError(400, "invalid_request_error", f"Missing required parameter: '{param}'.", param=param,
                    code="missing_required_parameter")


@dataclass(frozen=True, slots=True)
class ChatFeatures:
    """The features one request asked for (all empty for a plain text chat)."""

    stop: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None
    json_mode: bool = False  # response_format json_object
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> parameters schema, in order
    tool_choice: str | None = None  # auto | none | required | the forced tool's name
    forced: bool = False  # tool_choice names one tool
    effort: str | None = None
    images: tuple[tuple[str, int], ...] = ()  # (mime type, decoded bytes) in the last user message


PLAIN = ChatFeatures()
_FEATURE_KEYS = frozenset({"stop", "top_p", "seed", "presence_penalty", "frequency_penalty", "response_format",
                           "tools", "tool_choice", "reasoning_effort"})


def parse_features(body: dict[str, Any], messages: list[dict[str, Any]], *, reasoning_model: bool) -> ChatFeatures:
    """Check the request's features as the API does; raise its 400 for anything malformed.

    A plain text chat (no feature key, string contents, no tool messages) is ``PLAIN``."""
    if not _FEATURE_KEYS.intersection(body) and all(
            isinstance(m.get("content"), str) and m.get("role") != "tool" and "tool_calls" not in m
            for m in messages):
        return PLAIN
    _check_sampling(body)
    tools = _tools(body.get("tools"))
    choice, forced = _tool_choice(body.get("tool_choice"), tools)
    schema, json_mode = _response_format(body.get("response_format"), messages)
    _check_messages(messages)
    return ChatFeatures(
        stop=_stop(body.get("stop")), schema=schema, json_mode=json_mode, tools=tools, tool_choice=choice,
        forced=forced, effort=_effort(body.get("reasoning_effort"), reasoning_model), images=_images(messages),
    )


# ---- sampling ---------------------------------------------------------------------------


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise _invalid("stop", "expected a string or an array of strings.")
    if len(items) > MAX_STOP:
        raise ApiError(400, "invalid_request_error",
                       f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
                       f"but got an array with length {len(items)} instead.", param="stop",
                       code="array_above_max_length")
    return tuple(items)


def _check_sampling(body: dict[str, Any]) -> None:
    for name, low, high in (("top_p", 0.0, 1.0), ("presence_penalty", -2.0, 2.0), ("frequency_penalty", -2.0, 2.0)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid(name, "expected a number.", "invalid_type")
        if not low <= value <= high:
            side = "above maximum" if value > high else "below minimum"
            bound = f"<= {high:g}" if value > high else f">= {low:g}"
            raise ApiError(400, "invalid_request_error",
                           f"Invalid '{name}': decimal {side} value. Expected a value {bound}, "
                           f"but got {value} instead.", param=name, code=f"decimal_{side.replace(' ', '_')}_value")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _invalid("seed", "expected an integer.", "invalid_type")


# ---- structured output ------------------------------------------------------------------


def _response_format(value: Any, messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool]:
    if value is None:
        return None, False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None, False
    if kind == "json_object":
        if not any("json" in message_text(m.get("content")).lower() for m in messages):
            raise ApiError(400, "invalid_request_error",
                           "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                           "'json_object'.", param="messages")
        return None, True
    if kind != "json_schema":
        raise ApiError(400, "invalid_request_error",
                       f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                       param="response_format.type", code="invalid_value")
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise _missing("response_format.json_schema")
    name = spec.get("name")
    if name is None:
        raise _missing("response_format.json_schema.name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _invalid("response_format.json_schema.name", "expected a name of letters, digits, '_' or '-' "
                       "(at most 64).", "invalid_value")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise _invalid("response_format.json_schema.schema", "expected an object.", "invalid_type")
    if "strict" in spec and not isinstance(spec["strict"], bool):
        raise _invalid("response_format.json_schema.strict", "expected a boolean.", "invalid_type")
    return schema, False


# ---- tools ------------------------------------------------------------------------------


def _tools(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _invalid("tools", "expected an array of tool objects.", "invalid_type")
    tools: dict[str, dict[str, Any]] = {}
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _invalid(f"{where}.type", "expected 'function'.", "invalid_value")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _missing(f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise _invalid(f"{where}.function.name", "string does not match pattern. Expected a string that "
                           "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", "invalid_value")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise _invalid(f"{where}.function.parameters", "expected an object.", "invalid_type")
        if "description" in function and not isinstance(function["description"], str):
            raise _invalid(f"{where}.function.description", "expected a string.", "invalid_type")
        tools[name] = parameters
    return tools


def _tool_choice(value: Any, tools: dict[str, dict[str, Any]]) -> tuple[str | None, bool]:
    if value is None:
        return ("auto" if tools else None), False
    if not tools:
        raise _invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")
    if value in ("auto", "none", "required"):
        return str(value), False
    function = value.get("function") if isinstance(value, dict) and value.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise _invalid("tool_choice", "expected 'none', 'auto', 'required' or "
                       "{'type': 'function', 'function': {'name': ...}}.", "invalid_value")
    if name not in tools:
        raise _invalid("tool_choice", f"tool '{name}' is not among 'tools'.", "invalid_value")
    return name, True


def _check_messages(messages: list[dict[str, Any]]) -> None:
    """Tool results must answer the assistant's calls; calls carry arguments as JSON strings."""
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls") is not None:
            open_calls = _assistant_calls(message["tool_calls"], f"messages[{index}].tool_calls")
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                raise _missing(f"messages[{index}].tool_call_id")
            if call_id not in open_calls:
                raise ApiError(400, "invalid_request_error",
                               "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                               "message with 'tool_calls'.", param=f"messages.[{index}].role")
        elif role in ("user", "system", "developer"):
            open_calls = set()


def _assistant_calls(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list) or not calls:
        raise _invalid(where, "expected a non-empty array of tool calls.", "invalid_type")
    ids: set[str] = set()
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(function, dict):
            raise _missing(f"{where}[{index}].function")
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments"), str):
            raise _invalid(f"{where}[{index}].function.arguments", "expected a string.", "invalid_type")
        ids.add(call["id"])
    return ids


# ---- images and reasoning ---------------------------------------------------------------


def _images(messages: list[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    """Images of every message checked; those of the last user message returned."""
    seen: tuple[tuple[str, int], ...] = ()
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        found = tuple(_image(part, f"messages[{index}].content[{n}]") for n, part in enumerate(content)
                      if isinstance(part, dict) and part.get("type") == "image_url")
        if message.get("role") == "user":
            seen = found
    return seen


def _image(part: dict[str, Any], where: str) -> tuple[str, int]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise _missing(f"{where}.image_url.url")
    match = _DATA_URL.match(url)
    size = features.decoded_size(match.group(2)) if match else None
    if match is None or size is None:
        raise ApiError(400, "invalid_request_error",
                       "You uploaded an unsupported image. Please make sure your image has of one the following "
                       "formats: ['png', 'jpeg', 'gif', 'webp'].", param=where, code="invalid_image_format")
    return match.group(1), size


def _effort(value: Any, reasoning_model: bool) -> str | None:
    if value is None:
        return None
    if not reasoning_model:
        raise ApiError(400, "invalid_request_error",
                       "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                       param="reasoning_effort", code="unsupported_parameter")
    if value not in EFFORTS:
        raise ApiError(400, "invalid_request_error",
                       f"Invalid value: '{str(value)[:40]}'. Supported values are: "
                       + ", ".join(f"'{e}'" for e in EFFORTS[:-1]) + f", and '{EFFORTS[-1]}'.",
                       param="reasoning_effort", code="invalid_value")
    return str(value)


# ---- the answer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str  # JSON text, as the API sends it


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model answers: text in deltas, or tool calls; and its token counts."""

    text: str | None
    deltas: tuple[str, ...]
    finish: str
    tool_calls: tuple[ToolCallOut, ...] = ()
    reasoning_tokens: int = 0

    @property
    def output_tokens(self) -> int:
        visible = len(self.deltas) + sum(count_words(c.arguments) for c in self.tool_calls)
        return visible + self.reasoning_tokens


def from_reply(reply: Reply, reasoning_tokens: int = 0) -> Answer:
    """A plain text reply (``emulators.content.make_reply``) as an answer."""
    return Answer(reply.text, reply.deltas, "length" if reply.truncated else "stop", reasoning_tokens=reasoning_tokens)


def answer(label: str, messages: list[dict[str, Any]], feats: ChatFeatures, max_tokens: int | None, *,
           violate: bool = False, reasoning: bool = False) -> Answer:
    """The emulated model's answer (``emulators.features`` decides; this renders OpenAI's way)."""
    user_text = last_user_text(messages)
    thinks = reasoning and feats.effort != "none"  # reasoning_effort "none": a reasoning model that does not
    thought = count_words(features.thinking_text(user_text)) if thinks else 0
    if feats.tools and feats.tool_choice != "none" and messages and messages[-1].get("role") == "user":
        name = feats.tool_choice if feats.forced and feats.tool_choice else next(iter(feats.tools))
        arguments = orjson.dumps(features.sample_instance(feats.tools[name])).decode()
        call = ToolCallOut(new_id("call_"), name, arguments)
        return Answer(None, (), "tool_calls", (call,), thought)
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        text = features.after_tool_result(_called_name(messages, last.get("tool_call_id")),
                                          message_text(last.get("content")))
    else:
        echo = " ".join(user_text[:ECHO_LIMIT_CHARS].split())
        text = features.image_note(feats.images) + f"Hello from the {label} emulator. You said: {echo}".rstrip()
    if feats.schema is not None or feats.json_mode:
        text = features.json_reply(feats.schema, text, violate=violate)
        return Answer(text, _pieces(text), "stop", reasoning_tokens=thought)
    return _words(text, max_tokens, feats.stop, thought)


def _called_name(messages: list[dict[str, Any]], call_id: Any) -> str | None:
    for message in messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict) and call.get("id") == call_id:
                return str(call["function"]["name"])
    return None


def _pieces(text: str, size: int = 8) -> tuple[str, ...]:
    """JSON text in stream-sized pieces (compact JSON has no spaces to split words at)."""
    return tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",)


def _words(text: str, max_tokens: int | None, stop: tuple[str, ...], thought: int) -> Answer:
    """Plain text word by word; cut at the first stop sequence, or at max_tokens (finish length)."""
    cuts = [text.find(s) for s in stop if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    words = _WORD.findall(text)
    truncated = max_tokens is not None and 0 < max_tokens < len(words)
    if truncated:
        words = words[:max_tokens]
    if words:
        words[-1] = words[-1].rstrip()
    return Answer("".join(words), tuple(words), "length" if truncated else "stop", reasoning_tokens=thought)

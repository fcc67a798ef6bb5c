"""The Anthropic Messages wire format: request checks, message bodies, stream events, model pages.

Validation messages follow the real API's ``field: problem`` style.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from emulators.anthropic_reply import Turn
from emulators.anthropic_request import (
    BUDGETED,
    Features,
    ThinkingRules,
    check_sampling,
    check_thinking_echo,
    parse_blocks,
    parse_features,
)
from emulators.base import ApiError, Call, new_id
from emulators.content import count_words, message_text
from emulators.faults import FaultSpec
from emulators.streams import StreamPlan
from emulators.wire import sse_event

__all__ = ["MessagesRequest", "error_body", "message", "models_page", "parse_messages", "stream_plan"]


def error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": error.type, "message": error.message}
    if error.code:
        # The SDK picks a more specific exception class from details.error_code.
        detail["details"] = {"error_code": error.code}
    return {"type": "error", "error": detail, "request_id": request_id}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    messages: list[Any]
    max_tokens: int
    stream: bool
    input_tokens: int  # not read from the cache
    features: Features


def parse_messages(call: Call, *, structured_outputs: bool = True, both_refused: bool = True,
                   thinking: ThinkingRules = BUDGETED) -> MessagesRequest:
    """The request, checked; ``structured_outputs``: the model takes ``output_config.format``;
    ``both_refused``: it refuses temperature and top_p together (the 4.5 models do);
    ``thinking``: the thinking types and effort levels it takes."""
    body = call.json_object()
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            raise _invalid(f"{field}: Field required")
    model, max_tokens, messages = body["model"], body["max_tokens"], body["messages"]
    if not isinstance(model, str):
        raise _invalid("model: Input should be a valid string")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise _invalid("max_tokens: Input should be greater than or equal to 1")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required")
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: Input should be a valid string or a list of text blocks")
    stops = check_sampling(body, both_refused)
    images, cached = parse_blocks(messages, system)
    features = parse_features(body, max_tokens, structured_outputs, thinking)
    if features.thinks:
        check_thinking_echo(messages)
    features.stop_sequences, features.images, features.cached_tokens = stops, tuple(images), cached
    words = count_words(message_text(system)) + sum(count_words(message_text(m.get("content"))) for m in messages)
    return MessagesRequest(model, messages, max_tokens, call.stream, max(1, words - cached), features)


def _usage(input_tokens: int, output_tokens: int, cached: int = 0, thinking: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached,
        "output_tokens": output_tokens, "service_tier": "standard",
    }
    if thinking:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


def _envelope(model: str, content: list[Any], stop_reason: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("msg_01", 11), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage,
    }


def message(model: str, turn: Turn, req: MessagesRequest) -> dict[str, Any]:
    usage = _usage(req.input_tokens, turn.output_tokens, req.features.cached_tokens, turn.thinking_tokens)
    body = _envelope(model, turn.blocks(), turn.stop_reason, usage)
    body["stop_sequence"] = turn.stop_sequence
    return body


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _block_stop(index: int) -> bytes:
    return sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def _thinking_frames(turn: Turn) -> list[bytes]:
    if turn.thinking is None:
        return []
    return [_block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            _delta(0, {"type": "thinking_delta", "thinking": turn.thinking}),
            _delta(0, {"type": "signature_delta", "signature": turn.signature}), _block_stop(0)]


def _main_block(turn: Turn, index: int) -> tuple[bytes, list[bytes]]:
    """The answer block's start frame and its deltas (text, or the tool input's JSON in pieces)."""
    if turn.tool_use is None:
        return (_block_start(index, {"type": "text", "text": ""}),
                [_delta(index, {"type": "text_delta", "text": text}) for text in turn.deltas])
    raw = orjson.dumps(turn.tool_use["input"]).decode()
    pieces = [raw[i:i + 8] for i in range(0, len(raw), 8)]
    start = {**turn.tool_use, "input": {}}
    return _block_start(index, start), [_delta(index, {"type": "input_json_delta", "partial_json": p}) for p in pieces]


def stream_plan(model: str, turn: Turn, req: MessagesRequest, fault: FaultSpec | None) -> StreamPlan:
    # message_start reports output_tokens 1 like the real API; message_delta then carries
    # the cumulative totals.
    cached = req.features.cached_tokens
    index = 0 if turn.thinking is None else 1
    start, deltas = _main_block(turn, index)
    head = [
        sse_event("message_start", {"type": "message_start",
                                    "message": _envelope(model, [], None, _usage(req.input_tokens, 1, cached))}),
        *_thinking_frames(turn),
        start,
        sse_event("ping", {"type": "ping"}),
    ]
    final_usage = _usage(req.input_tokens, turn.output_tokens, cached, turn.thinking_tokens)
    del final_usage["service_tier"]
    tail = [
        _block_stop(index),
        sse_event("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": turn.stop_reason, "stop_sequence": turn.stop_sequence},
                                    "usage": final_usage}),
        sse_event("message_stop", {"type": "message_stop"}),
    ]
    return StreamPlan(head, deltas, tail, broken=_broken_frame(fault))


def _broken_frame(fault: FaultSpec | None) -> bytes:
    if fault is None:
        return b""
    if fault.mode == "malformed":
        return b"event: content_block_delta\ndata: {not json\n\n"
    if fault.mode == "error_event":
        error = {"type": fault.error_type or "overloaded_error", "message": fault.message or "Overloaded"}
        return sse_event("error", {"type": "error", "error": error})
    return b""


def models_page(cards: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of the model list, honouring ``limit``, ``after_id`` and ``before_id``."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise _invalid("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise _invalid("limit: Input should be between 1 and 1000")
    ids = [card["id"] for card in cards]
    if query.get("before_id") in ids:
        # Paging backwards: the ``limit`` cards just before before_id.
        end = ids.index(query["before_id"])
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start = ids.index(query["after_id"]) + 1 if query.get("after_id") in ids else 0
        end = min(len(cards), start + limit)
        has_more = end < len(cards)
    page = cards[start:end]
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }

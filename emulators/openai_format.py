"""The OpenAI chat/embeddings wire format, shared by the OpenAI and LM Studio emulators.

Request parsing raises :class:`ApiError` with the messages, params and codes the real
API uses; the builders produce bodies the official SDK validates strictly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from emulators.base import ApiError, Call, new_id
from emulators.content import count_words, embedding_vector, encode_base64_floats, message_text
from emulators.faults import FaultSpec
from emulators.openai_features import Answer, ToolCallOut
from emulators.streams import StreamPlan
from emulators.wire import sse_data

__all__ = [
    "DONE",
    "ChatRequest",
    "EmbeddingsRequest",
    "chat_completion",
    "chat_stream_plan",
    "embeddings_response",
    "error_body",
    "parse_chat",
    "parse_embeddings",
    "prompt_tokens",
]

DONE = b"data: [DONE]\n\n"
MAX_EMBEDDING_DIMS = 4096


def error_body(error: ApiError) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def _missing(param: str) -> ApiError:
    return ApiError(
        400, "invalid_request_error", f"Missing required parameter: '{param}'.",
        param=param, code="missing_required_parameter",
    )


def _invalid(param: str, why: str) -> ApiError:
    return ApiError(400, "invalid_request_error", f"Invalid value for '{param}': {why}", param=param)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str | None
    messages: list[Any]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    body: dict[str, Any]  # the whole request, for the features (emulators.openai_features)


def _model(body: dict[str, Any], required: bool) -> str | None:
    """The request's ``model``, with the API's 400 when it is missing (and required) or not a string."""
    model = body.get("model")
    if model is None and required:
        raise _missing("model")
    if model is not None and not isinstance(model, str):
        raise _invalid("model", "expected a string.")
    return model


def parse_chat(call: Call, *, model_required: bool = True) -> ChatRequest:
    body = call.json_object()
    model = _model(body, model_required)
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _invalid("messages", "expected a non-empty array of message objects.")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise _invalid("max_tokens", "expected an integer of at least 1.")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return ChatRequest(model, messages, call.stream, include_usage, max_tokens, body)


def prompt_tokens(messages: list[Any]) -> int:
    return max(1, sum(count_words(message_text(m.get("content"))) for m in messages))


def _usage(prompt: int, answer: Answer) -> dict[str, Any]:
    completion = answer.output_tokens  # includes the reasoning tokens, as the API counts them
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


def _tool_call(call: ToolCallOut) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def chat_completion(model: str, answer: Answer, prompt: int, fingerprint: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.tool_calls:
        message["tool_calls"] = [_tool_call(c) for c in answer.tool_calls]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish}],
        "usage": _usage(prompt, answer),
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }


def chat_stream_plan(
    model: str, answer: Answer, prompt: int, *, include_usage: bool, fingerprint: str, fault: FaultSpec | None
) -> StreamPlan:
    # Every chunk of one stream shares id, created and model, as in the real API; the
    # constant part is serialised once and spliced, which keeps long streams cheap.
    common: dict[str, Any] = {
        "id": new_id("chatcmpl-"), "object": "chat.completion.chunk",
        "created": int(time.time()), "model": model, "service_tier": "default",
        "system_fingerprint": fingerprint,
    }
    if include_usage:
        common["usage"] = None  # the real API marks every non-final chunk with usage: null
    prefix = orjson.dumps(common)[:-1] + b',"choices":'

    def chunk(choices: list[dict[str, Any]]) -> bytes:
        return b"data: " + prefix + orjson.dumps(choices) + b"}\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}

    head = [chunk([delta({"role": "assistant", "content": "" if answer.text is not None else None,
                          "refusal": None})])]
    deltas = [chunk([delta({"content": text})]) for text in answer.deltas]
    deltas += [chunk([delta({"tool_calls": [piece]})]) for piece in _tool_call_pieces(answer.tool_calls)]
    tail = [chunk([delta({}, answer.finish)])]
    if include_usage:
        final = {**common, "choices": [], "usage": _usage(prompt, answer)}
        tail.append(sse_data(final))
    tail.append(DONE)
    return StreamPlan(head, deltas, tail, broken=_broken_frame(fault))


def _tool_call_pieces(calls: tuple[ToolCallOut, ...], size: int = 8) -> list[dict[str, Any]]:
    """Each call as the API streams it: id, type and name first, then its arguments in fragments."""
    pieces: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        pieces.append({"index": index, "id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": ""}})
        pieces += [{"index": index, "function": {"arguments": call.arguments[i : i + size]}}
                   for i in range(0, len(call.arguments), size)]
    return pieces


def _broken_frame(fault: FaultSpec | None) -> bytes:
    if fault is None:
        return b""
    if fault.mode == "malformed":
        return b'data: {not json\n\n'
    if fault.mode == "error_event":
        error = ApiError(
            500, fault.error_type or "server_error",
            fault.message or "The server had an error while processing your request. Sorry about that!",
            code=fault.error_code,
        )
        return sse_data(error_body(error))
    return b""


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    model: str | None
    inputs: list[str]
    dims: int
    base64: bool


def parse_embeddings(call: Call, *, model_required: bool = True, default_dims: int = 8) -> EmbeddingsRequest:
    body = call.json_object()
    model = _model(body, model_required)
    raw = body.get("input")
    if raw is None:
        raise _missing("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise _invalid("input", "expected a non-empty string or a non-empty array of non-empty strings.")
    dims = body.get("dimensions", default_dims)
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_EMBEDDING_DIMS:
        raise _invalid("dimensions", f"expected an integer between 1 and {MAX_EMBEDDING_DIMS}.")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _invalid("encoding_format", "expected 'float' or 'base64'.")
    return EmbeddingsRequest(model, inputs, dims, encoding == "base64")


def embeddings_response(model: str, req: EmbeddingsRequest) -> dict[str, Any]:
    data = []
    for index, text in enumerate(req.inputs):
        vector = embedding_vector(text, req.dims)
        data.append({
            "object": "embedding", "index": index,
            "embedding": encode_base64_floats(vector) if req.base64 else vector,
        })
    tokens = max(1, sum(count_words(text) for text in req.inputs))
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

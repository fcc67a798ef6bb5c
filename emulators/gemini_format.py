"""The Gemini API (v1beta) wire format: request checks, responses, stream chunks, errors.

Everything is proto3 JSON as Google serves it: lowerCamel keys, enums as their names,
int64 token counts as numbers, Durations as ``"47s"``. Errors are
``{"error": {code, message, status, details}}`` with typed ``details`` (``@type``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulators.base import ApiError, Call
from emulators.content import Reply, count_words, embedding_vector
from emulators.faults import FaultSpec
from emulators.gemini_request import GenerateRequest, content_text, invalid, parse_generate
from emulators.streams import StreamPlan
from emulators.wire import sse_data

__all__ = [
    "GRPC_CODES",
    "THOUGHT_SIGNATURE",
    "Answer",
    "GenerateRequest",
    "blocked_response",
    "content_text",
    "embed_batch",
    "error_body",
    "generate_response",
    "invalid",
    "parse_embed_batch",
    "parse_generate",
    "stream_plan",
]

# The canonical status name for each HTTP status Google APIs use.
GRPC_CODES: dict[int, str] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_TYPE = "type.googleapis.com/google.rpc."
_HARM = "HARM_CATEGORY_DANGEROUS_CONTENT"


def error_body(error: ApiError, retry_delay_s: float | None = None) -> dict[str, Any]:
    """The error envelope; ``error.code`` is an ErrorInfo reason, ``retry_delay_s`` adds RetryInfo."""
    details: list[dict[str, Any]] = []
    if error.code:
        details.append({"@type": _TYPE + "ErrorInfo", "reason": error.code, "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}})
    if error.status == 429:
        details.append({"@type": _TYPE + "QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]})
        details.append({"@type": _TYPE + "Help", "links": [{
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]})
        if retry_delay_s is not None:
            details.append({"@type": _TYPE + "RetryInfo", "retryDelay": _duration(retry_delay_s)})
    body: dict[str, Any] = {"code": error.status, "message": error.message, "status": error.type}
    if details:
        body["details"] = details
    return {"error": body}


def _duration(seconds: float) -> str:
    """A proto3 JSON Duration: whole seconds as "47s", fractions as "1.5s"."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:.9f}".rstrip("0") + "s"


# The thoughtSignature the emulated model puts on a function call it made while thinking.
THOUGHT_SIGNATURE = "ZW11bGF0ZWQtdGhvdWdodC1zaWduYXR1cmU="


@dataclass(frozen=True, slots=True)
class Answer:
    """What the emulated model answers: text, or a function call, after optional thinking."""

    reply: Reply
    call: dict[str, Any] | None = None  # a functionCall: {name, args}
    thoughts: str | None = None  # what it thought (None: it did not think)
    show_thoughts: bool = False  # includeThoughts: the thoughts go out as a thought part

    @property
    def output_tokens(self) -> int:
        return self.reply.output_tokens + (1 + len(self.call["args"]) if self.call else 0)

    @property
    def thought_tokens(self) -> int | None:
        return count_words(self.thoughts) if self.thoughts is not None else None

    @property
    def finish(self) -> str:
        return "MAX_TOKENS" if self.reply.truncated else "STOP"

    def thought_part(self) -> dict[str, Any] | None:
        return {"text": self.thoughts, "thought": True} if self.show_thoughts and self.thoughts else None

    def call_part(self) -> dict[str, Any] | None:
        if self.call is None:
            return None
        part: dict[str, Any] = {"functionCall": self.call}
        if self.thoughts is not None:
            part["thoughtSignature"] = THOUGHT_SIGNATURE
        return part


def _usage(prompt: int, output: int, thoughts: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt, "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + (thoughts or 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _candidate(text: str, finish: str | None, ratings: list[dict[str, Any]] | None = None,
               parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts if parts is not None else [{"text": text}], "role": "model"},
                            "index": 0}
    if finish:
        cand["finishReason"] = finish
    if ratings:
        cand["safetyRatings"] = ratings
    return cand


def _envelope(model: str, candidates: list[dict[str, Any]], usage: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model, "responseId": rid}


def generate_response(model: str, answer: Answer, prompt: int, rid: str) -> dict[str, Any]:
    parts = [p for p in (answer.thought_part(),) if p]
    if answer.reply.text or answer.call is None:
        parts.append({"text": answer.reply.text})
    parts += [p for p in (answer.call_part(),) if p]
    usage = _usage(prompt, answer.output_tokens, answer.thought_tokens)
    return _envelope(model, [_candidate("", answer.finish, parts=parts)], usage, rid)


def _ratings() -> list[dict[str, Any]]:
    return [{"category": _HARM, "probability": "HIGH", "blocked": True},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]


def blocked_response(model: str, reply: Reply, prompt: int, fault: FaultSpec, rid: str) -> dict[str, Any]:
    """What the API answers when its filter blocks: the prompt (``after_chunks`` 0) or the answer."""
    reason = fault.error_code or "SAFETY"
    if fault.after_chunks == 0:
        feedback = {"blockReason": reason, "safetyRatings": _ratings()}
        return {"promptFeedback": feedback, "usageMetadata": _usage(prompt, 0) | {"candidatesTokenCount": 0},
                "modelVersion": model, "responseId": rid}
    words = reply.deltas[: fault.after_chunks]
    return _envelope(model, [_candidate("".join(words), reason, _ratings())], _usage(prompt, len(words)), rid)


def stream_plan(model: str, answer: Answer, prompt: int, fault: FaultSpec | None, rid: str) -> StreamPlan:
    """A thought chunk when asked for, one chunk per word, then the last one with the function
    call (if any), ``finishReason`` and the full usage (there is no end marker)."""
    reply, thoughts = answer.reply, answer.thought_tokens
    if fault is not None and fault.mode == "content_blocked":
        shown = reply.deltas[: fault.after_chunks]
        deltas = [sse_data(_envelope(model, [_candidate(w, None)], _usage(prompt, i + 1), rid))
                  for i, w in enumerate(shown)]
        stop = blocked_response(model, reply, prompt, fault, rid)
        if fault.after_chunks:
            stop["candidates"][0]["content"]["parts"] = [{"text": ""}]
        return StreamPlan([], deltas, [sse_data(stop)])
    thought = answer.thought_part()
    head = [sse_data(_envelope(model, [_candidate("", None, parts=[thought])], _usage(prompt, 0, thoughts), rid))
            ] if thought else []
    deltas = [sse_data(_envelope(model, [_candidate(w, None)], _usage(prompt, i + 1, thoughts), rid))
              for i, w in enumerate(reply.deltas)]
    call = answer.call_part()
    last = _envelope(model, [_candidate("", answer.finish, parts=[call] if call else None)],
                     _usage(prompt, answer.output_tokens, thoughts), rid)
    return StreamPlan(head, deltas, [sse_data(last)], broken=_broken_frame(fault))


def _broken_frame(fault: FaultSpec | None) -> bytes:
    if fault is None:
        return b""
    if fault.mode == "malformed":
        return b'data: {"candidates": [{"content": {"parts": [{"text": "\n\n'
    if fault.mode == "error_event":
        status = fault.error_type or "UNAVAILABLE"
        code = next((c for c, name in GRPC_CODES.items() if name == status), 500)
        return sse_data({"error": {"code": code, "message": fault.message or "The model is overloaded. "
                                   "Please try again later.", "status": status}})
    return b""


def parse_embed_batch(call: Call, model_name: str) -> list[str]:
    """The texts of a batchEmbedContents body; each request must name the model of the URL."""
    body = call.json_object()
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
    texts = []
    for index, item in enumerate(requests):
        if not isinstance(item, dict):
            raise invalid(f"Invalid value at 'requests[{index}]', must be an object")
        if item.get("model") != model_name:
            raise invalid(f"Model names should match. requests[{index}].model: {item.get('model')!s:.80}, "
                          f"model: {model_name}")
        texts.append(content_text(item.get("content"), f"requests[{index}].content"))
    return texts


def embed_batch(texts: list[str], dimensions: int) -> dict[str, Any]:
    return {"embeddings": [{"values": embedding_vector(text, dimensions)} for text in texts]}

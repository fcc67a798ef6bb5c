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
from emulators.streams import StreamPlan
from emulators.wire import sse_data

__all__ = [
    "GRPC_CODES",
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


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


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


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    user_text: str  # the last user turn's text: what the reply echoes
    max_tokens: int | None
    prompt_tokens: int


def content_text(content: Any, where: str) -> str:
    """The text of a Content object's parts; the API's 400 when it is not one."""
    if not isinstance(content, dict):
        raise invalid(f"Invalid value at '{where}', must be an object")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def parse_generate(call: Call) -> GenerateRequest:
    body = call.json_object()
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    texts = []
    for index, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise invalid(f"Please use a valid role: user, model. (contents[{index}].role)")
        texts.append((role, content_text(content, f"contents[{index}]")))
    system = content_text(body["systemInstruction"], "system_instruction") if "systemInstruction" in body else ""
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise invalid("Invalid value at 'generation_config', must be an object")
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise invalid(f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {max_tokens}")
    user = next((text for role, text in reversed(texts) if role == "user"), "")
    words = count_words(system) + sum(count_words(text) for _, text in texts)
    return GenerateRequest(user, max_tokens, max(1, words))


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }


def _candidate(text: str, finish: str | None, ratings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    if ratings:
        cand["safetyRatings"] = ratings
    return cand


def _envelope(model: str, candidates: list[dict[str, Any]], usage: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model, "responseId": rid}


def generate_response(model: str, reply: Reply, prompt: int, rid: str) -> dict[str, Any]:
    finish = "MAX_TOKENS" if reply.truncated else "STOP"
    return _envelope(model, [_candidate(reply.text, finish)], _usage(prompt, reply.output_tokens), rid)


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


def stream_plan(model: str, reply: Reply, prompt: int, fault: FaultSpec | None, rid: str) -> StreamPlan:
    """One chunk per word; the last one carries ``finishReason`` and the full usage (no end marker)."""
    if fault is not None and fault.mode == "content_blocked":
        shown = reply.deltas[: fault.after_chunks]
        deltas = [sse_data(_envelope(model, [_candidate(w, None)], _usage(prompt, i + 1), rid))
                  for i, w in enumerate(shown)]
        stop = blocked_response(model, reply, prompt, fault, rid)
        if fault.after_chunks:
            stop["candidates"][0]["content"]["parts"] = [{"text": ""}]
        return StreamPlan([], deltas, [sse_data(stop)])
    deltas = [sse_data(_envelope(model, [_candidate(w, None)], _usage(prompt, i + 1), rid))
              for i, w in enumerate(reply.deltas)]
    finish = "MAX_TOKENS" if reply.truncated else "STOP"
    last = _envelope(model, [_candidate("", finish)], _usage(prompt, reply.output_tokens), rid)
    return StreamPlan([], deltas, [sse_data(last)], broken=_broken_frame(fault))


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

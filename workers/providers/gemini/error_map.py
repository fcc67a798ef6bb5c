"""Gemini's errors as taxonomy errors.

Google APIs answer every failure with ``{"error": {code, message, status, details}}``:
``status`` is the canonical gRPC code name (``RESOURCE_EXHAUSTED``, ``INVALID_ARGUMENT``...)
and ``details`` holds typed messages, among them ``google.rpc.RetryInfo`` with a
``retryDelay`` Duration ("47s", "1.5s") on some 429s and ``google.rpc.ErrorInfo`` whose
``reason`` tells a wrong key (``API_KEY_INVALID``, sent as a 400) from other bad requests.
An error inside a stream is the same object as one ``data:`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared import errors
from workers.providers.http_base import ErrorClass, Scrub, build_error, decode_json, openai_error_class, provider_detail
from workers.retry_hints import HeadersLike, retry_after_s

__all__ = ["GoogleError", "gemini_error_class", "map_gemini_error", "parse_google_error", "retry_delay_s"]

_BY_STATUS: dict[str, ErrorClass] = {
    "INVALID_ARGUMENT": errors.InvalidRequest,
    "FAILED_PRECONDITION": errors.InvalidRequest,
    "OUT_OF_RANGE": errors.InvalidRequest,
    "UNAUTHENTICATED": errors.AuthError,
    "PERMISSION_DENIED": errors.PermissionDenied,
    "NOT_FOUND": errors.NotFound,
    "RESOURCE_EXHAUSTED": errors.RateLimited,
    "UNIMPLEMENTED": errors.Unsupported,
    "INTERNAL": errors.ProviderError,
    "UNKNOWN": errors.ProviderError,
    "DATA_LOSS": errors.ProviderError,
    "ABORTED": errors.ProviderError,
    "CANCELLED": errors.ProviderError,
    # "The model is overloaded. Please try again later.": busy, not gone (the taxonomy's
    # ``unavailable`` is the gateway's own "no worker can take it").
    "UNAVAILABLE": errors.Overloaded,
    "DEADLINE_EXCEEDED": errors.Timeout,
}
# A wrong or expired key is a 400 INVALID_ARGUMENT whose ErrorInfo reason says so.
_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})
_KEY_WORDS = re.compile(r"API key (?:not valid|expired)", re.IGNORECASE)
_CONTEXT = re.compile(r"input token count .*exceeds|exceeds the maximum number of tokens|context (?:window|length)",
                      re.IGNORECASE)
# proto3 JSON Duration: seconds with up to nine fractional digits and an "s".
_DURATION = re.compile(r"(\d+(?:\.\d{1,9})?)s")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True, slots=True)
class GoogleError:
    message: str  # raw provider text: scrub before showing
    status: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)

    def reasons(self) -> set[str]:
        return {str(d.get("reason")) for d in self.details if d.get("@type") == _ERROR_INFO}


def parse_google_error(body: bytes) -> GoogleError:
    """The ``error`` object of a body (a bare one, or the first of a JSON array), or the body's text."""
    data = decode_json(body)
    if isinstance(data, list) and data:
        data = data[0]  # a stream requested without alt=sse answers errors as a one-item array
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        text = body.decode("utf-8", errors="replace").strip()
        return GoogleError("" if text.startswith("<") else text)  # an HTML page says nothing useful
    details = err.get("details")
    return GoogleError(
        str(err.get("message") or ""),
        str(err.get("status") or ""),
        [d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
    )


def retry_delay_s(details: list[dict[str, Any]]) -> float | None:
    """Seconds in the first ``RetryInfo.retryDelay``; None when absent or unreadable."""
    for detail in details:
        if detail.get("@type") != _RETRY_INFO:
            continue
        match = _DURATION.fullmatch(str(detail.get("retryDelay", "")).strip())
        if match:
            return float(match.group(1))
    return None


def gemini_error_class(status: int, info: GoogleError) -> ErrorClass:
    """The body's canonical status decides (it is all an in-stream error has); else the HTTP status."""
    if info.reasons() & _KEY_REASONS or (status in (0, 200, 400) and _KEY_WORDS.search(info.message)):
        return errors.AuthError
    cls = _BY_STATUS.get(info.status) or openai_error_class(status, "", "")
    if cls is errors.InvalidRequest and _CONTEXT.search(info.message):
        return errors.ContextLengthExceeded
    return cls


def map_gemini_error(
    status: int, headers: HeadersLike, body: bytes, provider: str, scrub: Scrub
) -> errors.LLMCallerError:
    """One Gemini failure (HTTP error or an error line in a stream) as one taxonomy error."""
    info = parse_google_error(body)
    cls = gemini_error_class(status, info)
    hint = retry_delay_s(info.details)
    if hint is None:
        hint = retry_after_s(headers)
    detail = provider_detail(info.message, scrub)
    if info.status:
        detail = f"{info.status}: {detail}" if detail else info.status
    return build_error(cls, provider, status, detail, retry_after=hint)

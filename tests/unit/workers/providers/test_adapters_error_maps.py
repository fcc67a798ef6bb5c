"""Table-driven error mapping: every status/body in the design maps to exactly one class."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared import errors
from shared.redact import redact
from tests.unit.workers.providers.helpers import PLAIN_SECRET, SECRET
from workers.providers.anthropic.adapter import map_anthropic_error
from workers.providers.lmstudio.adapter import map_lmstudio_error
from workers.providers.openai_compatible import map_openai_error


def scrub(text: str) -> str:
    return redact(text, (SECRET, PLAIN_SECRET))


def oa(message: str = "boom", type_: str = "invalid_request_error", code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def an(type_: str, message: str = "boom") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


OPENAI_CASES: list[tuple[str, int, bytes, dict[str, str], type[errors.LLMCallerError]]] = [
    ("400 invalid", 400, oa(), {}, errors.InvalidRequest),
    ("400 context", 400, oa("too long", code="context_length_exceeded"), {}, errors.ContextLengthExceeded),
    ("401", 401, oa("Incorrect API key", "invalid_request_error", "invalid_api_key"), {}, errors.AuthError),
    ("403", 403, oa("not allowed", "permission_error"), {}, errors.PermissionDenied),
    ("404", 404, oa("no such model", code="model_not_found"), {}, errors.NotFound),
    ("408", 408, oa("timeout", "server_error"), {}, errors.Timeout),
    ("409", 409, oa("conflict", "server_error"), {}, errors.ProviderError),
    ("413", 413, oa("too large"), {}, errors.InvalidRequest),
    ("422", 422, oa("unprocessable"), {}, errors.InvalidRequest),
    ("418 other 4xx", 418, oa("teapot"), {}, errors.InvalidRequest),
    (
        "429 quota code",
        429,
        oa("quota", "insufficient_quota", "insufficient_quota"),
        {},
        errors.QuotaExhausted,
    ),
    ("429 quota type", 429, oa("quota", "insufficient_quota", None), {}, errors.QuotaExhausted),
    (
        "429 rate",
        429,
        oa("slow", "requests", "rate_limit_exceeded"),
        {"retry-after": "2"},
        errors.RateLimited,
    ),
    ("500", 500, oa("oops", "server_error"), {}, errors.ProviderError),
    ("502 html", 502, b"<html><body>Bad Gateway</body></html>", {}, errors.ProviderError),
    ("503", 503, oa("busy", "server_error"), {}, errors.Overloaded),
    ("504", 504, b"", {}, errors.Timeout),
    ("501 other 5xx", 501, b"not json at all", {}, errors.ProviderError),
    ("599 other 5xx", 599, oa(), {}, errors.ProviderError),
    ("stream server_error", 200, oa("x", "server_error"), {}, errors.ProviderError),
    ("stream rate", 200, oa("x", "tokens", "rate_limit_exceeded"), {}, errors.RateLimited),
    ("stream context", 200, oa("x", code="context_length_exceeded"), {}, errors.ContextLengthExceeded),
    ("stream unknown", 200, oa("x", "mystery", None), {}, errors.ProviderError),
]

ANTHROPIC_CASES: list[tuple[str, int, bytes, dict[str, str], type[errors.LLMCallerError]]] = [
    ("400", 400, an("invalid_request_error", "messages: empty"), {}, errors.InvalidRequest),
    (
        "400 prompt too long",
        400,
        an("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        {},
        errors.ContextLengthExceeded,
    ),
    (
        "400 context limit",
        400,
        an("invalid_request_error", "input length and `max_tokens` exceed context limit: 1 + 2 > 3"),
        {},
        errors.ContextLengthExceeded,
    ),
    ("401", 401, an("authentication_error", "invalid x-api-key"), {}, errors.AuthError),
    ("402", 402, an("billing_error", "credit balance is too low"), {}, errors.QuotaExhausted),
    ("403", 403, an("permission_error"), {}, errors.PermissionDenied),
    ("404", 404, an("not_found_error", "model: nope"), {}, errors.NotFound),
    ("413", 413, an("request_too_large", "Request exceeds the maximum size"), {}, errors.InvalidRequest),
    ("429", 429, an("rate_limit_error"), {"retry-after": "12"}, errors.RateLimited),
    ("500", 500, an("api_error"), {}, errors.ProviderError),
    ("504", 504, an("timeout_error"), {}, errors.Timeout),
    ("529", 529, an("overloaded_error", "Overloaded"), {"retry-after": "1"}, errors.Overloaded),
    ("529 no body", 529, b"", {}, errors.Overloaded),
    ("401 no body", 401, b"", {}, errors.AuthError),
    ("503 proxy html", 503, b"<html>Service Unavailable</html>", {}, errors.Overloaded),
    ("502 proxy", 502, b"upstream connect error", {}, errors.ProviderError),
    ("type beats status", 500, an("overloaded_error"), {}, errors.Overloaded),
    # The same types arriving as an in-stream `event: error` after a 200:
    ("stream overloaded", 200, an("overloaded_error"), {}, errors.Overloaded),
    ("stream api_error", 200, an("api_error"), {}, errors.ProviderError),
    ("stream rate", 200, an("rate_limit_error"), {}, errors.RateLimited),
    ("stream invalid", 200, an("invalid_request_error"), {}, errors.InvalidRequest),
    ("stream unknown type", 200, an("brand_new_error"), {}, errors.ProviderError),
]

LMSTUDIO_CASES: list[tuple[str, int, bytes, dict[str, str], type[errors.LLMCallerError]]] = [
    (
        "200 unknown endpoint",
        200,
        b'{"error":"Unexpected endpoint or method. (GET /x)"}',
        {},
        errors.NotFound,
    ),
    (
        "404 unknown endpoint",
        404,
        b'{"error":"Unexpected endpoint or method. (POST /y)"}',
        {},
        errors.NotFound,
    ),
    (
        "404 no models loaded",
        404,
        oa(
            "No models loaded. Please load a model in the developer page or use the `lms load` command.",
            code="model_not_found",
        ),
        {},
        errors.InvalidRequest,
    ),
    ("400 model not loaded", 400, oa("Model is not loaded: qwen"), {}, errors.InvalidRequest),
    ("500 not loaded is a crash", 500, oa("model not loaded", "server_error"), {}, errors.ProviderError),
    ("200 other string error", 200, b'{"error":"something odd"}', {}, errors.ProviderError),
    ("400 plain", 400, oa("bad temperature"), {}, errors.InvalidRequest),
    ("404 unknown model", 404, oa("model 'x' not found", code="model_not_found"), {}, errors.NotFound),
    ("401", 401, oa("bad key"), {}, errors.AuthError),
    ("500", 500, b"Internal Server Error", {}, errors.ProviderError),
    ("503", 503, b"", {}, errors.Overloaded),
]

MAPPERS = {"openai": map_openai_error, "anthropic": map_anthropic_error, "lmstudio": map_lmstudio_error}
ALL = [
    (kind, *case)
    for kind, cases in (
        ("openai", OPENAI_CASES),
        ("anthropic", ANTHROPIC_CASES),
        ("lmstudio", LMSTUDIO_CASES),
    )
    for case in cases
]


@pytest.mark.parametrize(
    ("kind", "label", "status", "body", "headers", "expected"), ALL, ids=[f"{c[0]}:{c[1]}" for c in ALL]
)
def test_maps_to_exactly_one_class(
    kind: str,
    label: str,
    status: int,
    body: bytes,
    headers: dict[str, str],
    expected: type[errors.LLMCallerError],
) -> None:
    err = MAPPERS[kind](status, headers, body, kind, scrub)
    assert type(err) is expected, label
    assert err.provider == kind
    assert err.message.startswith(kind)
    assert "<html" not in err.message.lower()
    if status >= 300:
        assert f"HTTP {status}" in err.message or kind == "lmstudio"


@pytest.mark.parametrize("kind", sorted(MAPPERS))
def test_retry_hint_only_on_transient_errors(kind: str) -> None:
    limited = MAPPERS[kind](429, {"retry-after": "3"}, b"{}", kind, scrub)
    assert isinstance(limited, errors.RateLimited)
    assert limited.retry_after_s == 3.0
    bad_key = MAPPERS[kind](401, {"retry-after": "3"}, b"{}", kind, scrub)
    assert bad_key.retry_after_s is None


def test_openai_quota_is_not_retryable_but_rate_limit_is() -> None:
    quota = map_openai_error(
        429, {"retry-after": "5"}, oa("quota", "insufficient_quota", "insufficient_quota"), "o", scrub
    )
    rate = map_openai_error(
        429, {"retry-after": "5"}, oa("slow", "requests", "rate_limit_exceeded"), "o", scrub
    )
    assert not quota.retryable and quota.retry_after_s is None
    assert rate.retryable and rate.retry_after_s == 5.0


def test_openai_rate_limit_without_retry_after_uses_reset_headers() -> None:
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1m30s"}
    err = map_openai_error(429, headers, oa("slow", "tokens", "rate_limit_exceeded"), "o", scrub)
    assert err.retry_after_s == 90.0


@pytest.mark.parametrize("kind", sorted(MAPPERS))
@pytest.mark.parametrize("secret", [SECRET, PLAIN_SECRET])
def test_echoed_key_and_urls_never_reach_the_message(kind: str, secret: str) -> None:
    text = f"Incorrect API key provided: {secret}. Called https://user:hunter2@proxy.example/v1 for you."
    bodies: list[Any] = [oa(text, code="invalid_api_key"), an("authentication_error", text), text.encode()]
    for body in bodies:
        for status in (200, 401, 500):
            message = MAPPERS[kind](status, {}, body, kind, scrub).message
            assert secret not in message
            assert secret[:12] not in message
            assert "hunter2" not in message and "://" not in message


def test_long_provider_text_is_bounded_and_single_line() -> None:
    err = map_openai_error(400, {}, oa("line one\nline two " + "x" * 5000), "o", scrub)
    assert "\n" not in err.message
    assert len(err.message) < 400

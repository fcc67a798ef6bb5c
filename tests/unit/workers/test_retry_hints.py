"""Retry hints: retry-after-ms, retry-after (seconds or HTTP date), x-should-retry, OpenAI resets;
and each kind reading its own quota headers for the rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from tests.unit.workers.providers.helpers import run_with
from workers.providers.anthropic.adapter import AnthropicAdapter
from workers.providers.base import ProviderAdapter
from workers.providers.lmstudio.adapter import LMStudioAdapter
from workers.providers.openai.adapter import OpenAIAdapter
from workers.retry_hints import openai_reset_s, parse_duration, retry_after_s, should_retry

NOW = 1_750_000_000.0


def http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms wins
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"Retry-After": "3"}, 3.0),  # header names are case-insensitive, even in a dict
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": http_date(30)}, 30.0),
        ({"retry-after": http_date(-30)}, 0.0),  # a past date: retry now, never negative
        ({"retry-after": "-5"}, None),
        ({"retry-after-ms": "-100"}, None),
        ({"retry-after-ms": "-100", "retry-after": "4"}, 4.0),  # a bad ms falls back
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after": "tomorrow-ish"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "Mon, 99 Foo 2025 99:99:99 GMT"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    value = retry_after_s(headers, now=NOW)
    assert value == pytest.approx(expected) if expected is not None else value is None


def test_retry_after_accepts_httpx_headers() -> None:
    assert retry_after_s(httpx.Headers({"Retry-After-Ms": "20"})) == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("FALSE", False), (" false ", False), ("maybe", None), (None, None)],
)
def test_should_retry(value: str | None, expected: bool | None) -> None:
    headers = {} if value is None else {"x-should-retry": value}
    assert should_retry(headers) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("", None),
        (None, None),
        ("6 minutes", None),
        ("-1s", None),
        ("5", None),
        ("1s junk", None),
    ],
)
def test_parse_duration(value: str | None, expected: float | None) -> None:
    result = parse_duration(value)
    assert result == pytest.approx(expected) if expected is not None else result is None


def test_openai_reset_prefers_the_exhausted_budget() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    assert openai_reset_s(headers) == pytest.approx(2.0)


def test_openai_reset_without_an_exhausted_budget_takes_the_longest() -> None:
    headers = {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "6m0s"}
    assert openai_reset_s(headers) == pytest.approx(360.0)
    assert openai_reset_s({}) is None


@pytest.mark.parametrize(("adapter_cls", "headers", "expected"), [
    (OpenAIAdapter, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}, 90.0),
    (OpenAIAdapter, {"X-RateLimit-Remaining-Requests": "0", "X-RateLimit-Reset-Requests": "2s"}, 2.0),
    (OpenAIAdapter, {"x-ratelimit-remaining-requests": "4", "x-ratelimit-reset-requests": "1m30s"}, None),
    (LMStudioAdapter, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "3s"}, 3.0),
    (AnthropicAdapter, {"anthropic-ratelimit-requests-remaining": "0"}, 1.0),  # its reset is a timestamp
    (AnthropicAdapter, {"anthropic-ratelimit-requests-remaining": "12"}, None),
    (AnthropicAdapter, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "3s"}, None),
    (OpenAIAdapter, {"anthropic-ratelimit-requests-remaining": "0"}, None),  # each kind reads its own headers
])
def test_each_kind_reads_its_own_quota_headers_and_hands_the_pause_to_the_limiter(
        adapter_cls: type[ProviderAdapter], headers: dict[str, str], expected: float | None) -> None:
    seen: list[tuple[int, float | None]] = []

    async def observe(adapter: ProviderAdapter) -> float | None:
        adapter.on_response = lambda status, _headers, exhausted_s, _body_hint: seen.append((status, exhausted_s))
        adapter.observe(200, headers)
        return adapter.quota_exhausted_s(headers)

    assert run_with(adapter_cls, lambda _request: httpx.Response(500), observe) == expected
    assert seen == [(200, expected)]

"""Read a provider's "when may I try again" hints from response headers.

The worker runtime decides whether and when to retry; adapters only report what the
provider said, as ``retry_after_s`` on the error. Every function returns ``None`` for
a missing or unreadable hint and never a negative number. Values are not capped here:
a provider saying "one hour" is reported as such, and the runtime applies its own
ceiling (the official SDKs trust 0-120 s).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["HeadersLike", "openai_reset_s", "parse_duration", "retry_after_s", "should_retry"]

HeadersLike = Mapping[str, str]

# OpenAI's x-ratelimit-reset-* values look like "6m0s", "1s", "20ms" or "1h2m3.5s".
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _headers(headers: HeadersLike) -> Mapping[str, str]:
    # Header names are case-insensitive; a plain dict's lookups are not.
    return headers if isinstance(headers, CIMultiDict | CIMultiDictProxy) else CIMultiDict(headers)


def _non_negative(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None  # a negative delay is malformed, not "retry now"
    return number


def _from_http_date(value: str, now: float | None) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    current = time.time() if now is None else now
    # A date already past means "retry now", so it clamps to zero rather than being dropped.
    return max(0.0, when.timestamp() - current)


def retry_after_s(headers: HeadersLike, *, now: float | None = None) -> float | None:
    """Seconds to wait per ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date).

    ``now`` (Unix time) is for tests; it defaults to the current time.
    """
    h = _headers(headers)
    millis = _non_negative(h.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = h.get("retry-after")
    if value is None or not value.strip():
        return None
    seconds = _non_negative(value)
    if seconds is not None:
        return seconds
    return _from_http_date(value, now)


def should_retry(headers: HeadersLike) -> bool | None:
    """The provider's explicit ``x-should-retry`` verdict, or None when it gave none."""
    value = _headers(headers).get("x-should-retry", "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def parse_duration(value: str | None) -> float | None:
    """Seconds in a Go-style duration such as ``6m0s`` or ``20ms``; None if unreadable."""
    if not value:
        return None
    text = value.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def openai_reset_s(headers: HeadersLike) -> float | None:
    """A wait derived from OpenAI's ``x-ratelimit-reset-{requests,tokens}`` headers.

    Used when a 429 carries no ``retry-after``. The reset of an exhausted budget
    (remaining == 0) is the real answer; when no budget reports zero (a request larger
    than the tokens left), the longest reset is the safe guess: it avoids a retry storm.
    """
    h = _headers(headers)
    resets: dict[str, float] = {}
    exhausted: list[float] = []
    for budget in ("requests", "tokens"):
        reset = parse_duration(h.get(f"x-ratelimit-reset-{budget}"))
        if reset is None:
            continue
        resets[budget] = reset
        if h.get(f"x-ratelimit-remaining-{budget}", "").strip() == "0":
            exhausted.append(reset)
    if exhausted:
        return max(exhausted)
    return max(resets.values()) if resets else None

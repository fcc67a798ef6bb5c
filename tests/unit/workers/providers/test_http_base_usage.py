"""A stream that fails carries the usage its provider reported so far (``StreamState``), never made-up counts."""

from __future__ import annotations

from shared import errors
from shared.models import Usage
from workers.providers.http_base import StreamState


def test_a_broken_or_unfinished_stream_carries_the_reported_usage() -> None:
    state = StreamState("anthropic", "claude-haiku-4-5", parts=["Once "])
    state.usage = Usage(25, 1, 0, None)  # message_start's counts
    for error in (state.broken("sent a bad event"), state.interrupted(),
                  state.attach(errors.Overloaded("overloaded", provider="anthropic"))):
        assert error.usage == {"input_tokens": 25, "output_tokens": 1, "total_tokens": 26,
                               "cached_input_tokens": 0, "reasoning_tokens": None}
        assert errors.error_from_payload(error.to_payload()).usage == error.usage  # across the link


def test_a_stream_whose_provider_reported_nothing_carries_no_usage() -> None:
    state = StreamState("openai", "gpt-4o-mini", parts=["Once "])  # OpenAI reports usage in its last chunk only
    assert state.broken("sent a bad event").usage is None
    assert "usage" not in state.interrupted().to_payload()

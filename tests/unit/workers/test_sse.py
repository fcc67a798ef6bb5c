"""The SSE parser: field rules, line ends, chunk boundaries, size caps, incremental output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from workers.sse import SSEDecoder, SSEError, SSEEvent, iter_lines, iter_sse


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def parse(parts: list[bytes], **kwargs: int) -> list[SSEEvent]:
    async def main() -> list[SSEEvent]:
        return [event async for event in iter_sse(_chunks(parts), **kwargs)]

    return asyncio.run(main())


def lines(parts: list[bytes]) -> list[str]:
    async def main() -> list[str]:
        return [line async for line in iter_lines(_chunks(parts))]

    return asyncio.run(main())


SAMPLE = (
    b": keep-alive comment\r\n"
    b"event: message_start\r\n"
    b'data: {"a": 1}\r\n'
    b"\r\n"
    b"data: first line\r\n"
    b"data: second line\r\n"
    b"\r\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)
SAMPLE_EVENTS = [
    SSEEvent("message_start", '{"a": 1}'),
    SSEEvent("message", "first line\nsecond line"),
    SSEEvent("message", "[DONE]"),
]


def test_events_names_multiline_data_and_comments() -> None:
    assert parse([SAMPLE]) == SAMPLE_EVENTS


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(eol: bytes) -> None:
    assert parse([SAMPLE.replace(b"\r\n", eol)]) == SAMPLE_EVENTS


def test_every_single_split_point_gives_the_same_events() -> None:
    # Covers a CRLF split into CR | LF, a field name split mid-word, and so on.
    for cut in range(1, len(SAMPLE)):
        assert parse([SAMPLE[:cut], SAMPLE[cut:]]) == SAMPLE_EVENTS, cut


def test_one_byte_chunks_and_empty_chunks() -> None:
    parts = [SAMPLE[i : i + 1] for i in range(len(SAMPLE))]
    assert parse([b"", *parts, b""]) == SAMPLE_EVENTS


def test_cr_then_lf_in_next_chunk_is_one_line_end() -> None:
    assert lines([b"a\r", b"\nb\r", b"", b"\nc"]) == ["a", "b", "c"]


def test_final_event_without_trailing_blank_line_is_dispatched() -> None:
    assert parse([b"data: x\n\ndata: [DONE]"]) == [SSEEvent("message", "x"), SSEEvent("message", "[DONE]")]
    assert parse([b"data: [DONE]\n"]) == [SSEEvent("message", "[DONE]")]


def test_field_rules() -> None:
    decoder = SSEDecoder()
    for line in ["data:no-space", "data:  two spaces", "data", "id: 7", "retry: 100", "custom: x"]:
        assert decoder.feed(line) is None
    assert decoder.feed("") == SSEEvent("message", "no-space\n two spaces\n")


def test_event_name_without_data_is_dropped_and_reset() -> None:
    assert parse([b"event: ping\n\ndata: x\n\n"]) == [SSEEvent("message", "x")]


def test_bom_and_multibyte_utf8_split_across_chunks() -> None:
    body = "\ufeffdata: héllo ✓\n\n".encode()
    cut = body.index("✓".encode()) + 1  # inside the three-byte character
    assert parse([body[:cut], body[cut:]]) == [SSEEvent("message", "héllo ✓")]


def test_line_without_end_over_the_cap_raises() -> None:
    with pytest.raises(SSEError):
        parse([b"data: " + b"x" * 100, b"y" * 100], max_event_bytes=64)


def test_event_over_the_cap_raises_even_with_short_lines() -> None:
    with pytest.raises(SSEError):
        parse([b"data: 0123456789\n" * 10], max_event_bytes=64)


def test_events_are_yielded_before_the_rest_of_the_body_arrives() -> None:
    async def main() -> None:
        first_seen = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            yield b"data: one\n\n"
            await first_seen.wait()  # deadlocks if the parser waits for more input
            yield b"data: two\n\n"

        seen = []
        async for event in iter_sse(body()):
            seen.append(event.data)
            first_seen.set()
        assert seen == ["one", "two"]

    asyncio.run(asyncio.wait_for(main(), timeout=2))

"""Playing a provider's stream frame by frame, with pacing and stream faults applied.

A provider turns a reply into a :class:`StreamPlan` (its own framing); this module
decides what actually goes out: all of it, or the head and ``after_chunks`` deltas
followed by silence, a clean end without the end marker, a torn connection, a broken
frame or an in-stream error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from emulators.faults import FaultSpec
from emulators.wire import ABORT, Silence, StreamItem

__all__ = ["DEFAULT_SILENCE_S", "StreamPlan", "play"]

# "Silent forever" for any sane client timeout; shutdown and client disconnects end it early.
DEFAULT_SILENCE_S = 3600.0


@dataclass(slots=True)
class StreamPlan:
    head: Sequence[bytes]  # frames before the first text delta (role chunk, message_start, ...)
    deltas: Sequence[bytes]  # one frame per text delta
    tail: Sequence[bytes]  # frames after the text, ending with the end marker
    broken: bytes = b""  # the frame a malformed / error_event fault sends instead of the rest


async def play(plan: StreamPlan, fault: FaultSpec | None, chunk_delay_s: float) -> AsyncGenerator[StreamItem, None]:
    for frame in plan.head:
        yield frame
    cut = len(plan.deltas) if fault is None else min(fault.after_chunks, len(plan.deltas))
    for index in range(cut):
        if chunk_delay_s > 0 and index:
            await asyncio.sleep(chunk_delay_s)
        yield plan.deltas[index]
    if fault is not None:
        if fault.mode == "truncated_stream":
            if fault.close_connection:
                yield ABORT
            return  # the response ends cleanly (HTTP-wise) without the end marker
        if fault.mode in ("malformed", "error_event"):
            yield plan.broken
            return
        if fault.mode == "silent_stream":
            # After the silence the stream resumes: a stall, which a client may tolerate.
            yield Silence(DEFAULT_SILENCE_S if fault.delay_s is None else fault.delay_s)
    for index in range(cut, len(plan.deltas)):
        if chunk_delay_s > 0 and index:
            await asyncio.sleep(chunk_delay_s)
        yield plan.deltas[index]
    for frame in plan.tail:
        yield frame

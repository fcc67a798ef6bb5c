"""A thread's bounds: which of its oldest turns a new turn pushes out, and what a turn costs.

The policy (docs: README "Conversation threads"): a thread keeps at most ``max_turns``
turns and ``max_tokens`` tokens. A new turn that would pass either limit first drops the
oldest turns, as many as needed; the history sent then begins with a marker saying how
many turns were dropped, and the result counts them. Only a turn that alone is larger
than ``max_tokens`` is refused (before any paid request): dropping cannot make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.records import TurnRow
from shared import errors
from shared.models import Message
from shared.settings import StoreSettings

__all__ = ["DropPlan", "ThreadLimits", "dropped_marker", "plan_drops", "turn_tokens"]


@dataclass(frozen=True, slots=True)
class ThreadLimits:
    """The operator's bounds on every thread (``LLMC_THREAD_MAX_TURNS/MAX_TOKENS/TTL_S``)."""

    max_turns: int
    max_tokens: int
    ttl_s: int

    @classmethod
    def of(cls, settings: StoreSettings) -> ThreadLimits:
        return cls(settings.thread_max_turns, settings.thread_max_tokens, settings.thread_ttl_s)


@dataclass(frozen=True, slots=True)
class DropPlan:
    """The turns kept as history, and the first kept ``seq`` (None: nothing dropped now)."""

    kept: list[TurnRow]
    drop_before_seq: int | None

    @property
    def history_tokens(self) -> int:
        return sum(t.tokens for t in self.kept)


def plan_drops(turns: list[TurnRow], new_tokens: int, limits: ThreadLimits) -> DropPlan:
    """Drop the oldest ``turns`` until one more turn of ``new_tokens`` fits both limits."""
    if new_tokens > limits.max_tokens:
        raise errors.InvalidRequest(
            f"this turn alone is about {new_tokens} tokens, over the thread limit of {limits.max_tokens}; "
            "send less, or start a new thread")
    start = max(0, len(turns) + 1 - limits.max_turns)
    tokens = sum(t.tokens for t in turns[start:])
    while start < len(turns) and tokens + new_tokens > limits.max_tokens:
        tokens -= turns[start].tokens
        start += 1
    kept = turns[start:]
    return DropPlan(kept, kept[0].seq if start and kept else (turns[-1].seq + 1 if start else None))


def dropped_marker(dropped: int) -> Message:
    """The system message the history sent begins with once turns have been dropped."""
    return Message("system", f"[{dropped} earlier turn{'s' if dropped != 1 else ''} of this conversation "
                             "were dropped to keep it within its limits; what follows is the rest.]")


def turn_tokens(input_tokens: int | None, output_tokens: int | None, history_tokens: int,
                own_estimate: int, reply_estimate: int) -> int:
    """What a turn counts toward the thread's tokens: its own messages and its reply.

    The provider's usage where it reported it: the reply's ``output_tokens``, and the input
    minus the history already counted (the provider counts the whole request); the estimate
    where it did not, or where that difference is not positive (another provider's
    tokenizer counted the history).
    """
    own = input_tokens - history_tokens if input_tokens is not None else 0
    if own <= 0:
        own = own_estimate
    reply = output_tokens if output_tokens is not None else reply_estimate
    return own + reply

"""Conversation threads: ``chat``/``chatStream`` with ``thread: "new"`` or ``thread_id``.

The gateway keeps each turn (the caller's new messages and the reply, tool calls and
results included; images by reference) in the store (``gateway.store``) and sends the
thread's history before the new messages on the next turn. The history is the
contract's neutral form, so a thread may change provider or model between turns.

- A turn is kept only when the call succeeds: a failed call or a broken stream leaves
  the thread as it was, and the error says so.
- Bounds (``gateway.threads_bounds``): oldest turns dropped, with a marker, to stay
  within the turn and token limits; a TTL refreshed by every turn.
- Threads are per client: another client's id is not found. A caller that no HTTP
  authentication vouched for (auth off) is the one client ``LOCAL_CLIENT``.
- One turn at a time per thread: a second concurrent turn on this gateway is refused
  before any paid request (``unavailable``, retryable); across gateways sharing a store,
  the store's conditional append refuses the later one, and nothing kept is lost.

Plain calls never come here, so they never touch the store.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

from gateway.chat_request import ChatCall
from gateway.store import StoreSlot
from gateway.store.base import Store
from gateway.store.records import StoreError, ThreadRow, TurnRow
from gateway.threads_bounds import ThreadLimits, dropped_marker, plan_drops, turn_tokens
from gateway.threads_codec import decode_turn, encode_turn, estimate_tokens
from gateway.tool_schemas import ChatInput, ChatOutput, ThreadStateOut
from shared import errors
from shared.chat_parts import ToolCall
from shared.models import Message

__all__ = ["LOCAL_CLIENT", "NOT_KEPT", "ThreadKeeper", "new_thread_id", "owner_of", "store_failure"]

# The client of a call no HTTP authentication ran for: one fixed owner for its threads.
LOCAL_CLIENT = "local"
# Added to the message of a thread call that failed: what became of the thread.
NOT_KEPT = "The thread is unchanged: this turn was not kept."

RunCall = Callable[[ChatCall], Awaitable[ChatOutput]]


def owner_of(client_id: str | None) -> str:
    """The id a thread is kept under for the caller ``client_id`` (None: no auth ran)."""
    return client_id or LOCAL_CLIENT


def store_failure(exc: StoreError, kept: bool = True) -> errors.Unavailable:
    """A store that failed mid-call (locked, unreachable...) as the client's error, the operator's reason in it."""
    return errors.Unavailable(f"the gateway's store failed: {exc}" + ("" if kept else f" {NOT_KEPT}"),
                              retry_after_s=1.0)


def new_thread_id() -> str:
    """A fresh, unguessable thread id (``tool_schemas.THREAD_ID_PATTERN``)."""
    return "th_" + secrets.token_hex(16)


class ThreadKeeper:
    """Runs a thread's turn around the ordinary chat call, and keeps it if it succeeds."""

    def __init__(self, slot: StoreSlot, limits: ThreadLimits, clock: Callable[[], float] = time.time) -> None:
        self._slot = slot
        self.limits = limits
        self._clock = clock
        self._busy: set[tuple[str, str]] = set()

    async def turn(self, args: ChatInput, client_id: str | None, run: RunCall) -> ChatOutput:
        """One turn: load the history, run ``run`` with it before the new messages, keep the turn."""
        store = self._slot.get()
        owner = owner_of(client_id)
        try:
            row, turns = await self._open(store, args, owner)
        except StoreError as exc:
            raise store_failure(exc) from None
        key = (owner, row.thread_id)
        if key in self._busy:
            raise errors.Unavailable("this thread is busy: another turn of it is still running; send this turn "
                                     "again once that one has finished", retry_after_s=1.0)
        self._busy.add(key)
        try:
            return await self._turn(store, args, owner, row, turns, run)
        except StoreError as exc:
            raise store_failure(exc, kept=False) from None
        finally:
            self._busy.discard(key)

    async def _open(self, store: Store, args: ChatInput, owner: str) -> tuple[ThreadRow, list[TurnRow]]:
        now = self._clock()
        if args.thread_id is None:
            return ThreadRow(new_thread_id(), owner, now, now, None), []
        found = await store.get_thread(args.thread_id, owner, now)
        if found is None:
            raise errors.NotFound("no such thread for this client: unknown, deleted or expired; "
                                  'start one with "thread": "new"')
        return found

    async def _turn(self, store: Store, args: ChatInput, owner: str, row: ThreadRow, turns: list[TurnRow],
                    run: RunCall) -> ChatOutput:
        call = ChatCall.build(args)
        own = call.messages
        own_estimate = estimate_tokens(own)
        plan = plan_drops(turns, own_estimate, self.limits)
        dropped_now = len(turns) - len(plan.kept)
        history = await self._history(store, row, plan.kept, row.dropped_turns + dropped_now)
        _name_tool_results(own, history)
        call.messages = history + own
        call.needs = call.needs | ChatCall(history, frozenset())._needs()
        try:
            output = await run(call)
        except errors.LLMCallerError as exc:
            exc.message = f"{exc.message} {NOT_KEPT}"
            raise
        reply = Message("assistant", output.text,
                        [ToolCall(c.id, c.name, c.arguments) for c in output.tool_calls] if output.tool_calls else None)
        tokens = turn_tokens(output.usage.input_tokens, output.usage.output_tokens, plan.history_tokens,
                             own_estimate, estimate_tokens([reply]))
        expires_at = await self._keep(store, owner, row, TurnRow(
            row.next_seq, b"", tokens, output.provider, output.model, self._clock()), [*own, reply],
            plan.drop_before_seq)
        output.thread_id = row.thread_id
        output.thread = ThreadStateOut(
            turn=row.next_seq, turns=len(plan.kept) + 1, tokens=plan.history_tokens + tokens,
            dropped_turns=row.dropped_turns + dropped_now, dropped_now=dropped_now,
            expires_at=expires_at)
        return output

    async def _history(self, store: Store, row: ThreadRow, kept: list[TurnRow], dropped: int) -> list[Message]:
        history = [dropped_marker(dropped)] if dropped else []

        async def blob(digest: str) -> tuple[str, bytes] | None:
            return await store.get_blob(row.thread_id, digest)

        for turn in kept:
            history.extend(await decode_turn(turn.messages, blob))
        return history

    async def _keep(self, store: Store, owner: str, row: ThreadRow, turn: TurnRow, messages: list[Message],
                    drop_before_seq: int | None) -> float:
        """Store the turn (its images as blobs), the thread first if this is its first turn; the new expiry."""
        async def put(digest: str, mime: str, data: bytes) -> None:
            await store.put_blob(row.thread_id, digest, mime, data)

        if row.next_seq == 0:
            await store.create_thread(row)
        turn.messages = await encode_turn(messages, put)
        expires_at = turn.created_at + self.limits.ttl_s
        kept = await store.append_turn(row.thread_id, owner, turn, turn.created_at,
                                       expires_at=expires_at, drop_before_seq=drop_before_seq)
        if not kept:
            raise errors.Unavailable(
                "this thread changed while this turn ran (a turn sent through another gateway, or the thread was "
                "deleted or expired); this reply was not kept: continue the thread to see where it stands")
        return expires_at


def _name_tool_results(own: list[Message], history: list[Message]) -> None:
    """Give each tool result its function's name from the call it answers, in this turn or the history."""
    names = {c.id: c.name for m in history + own for c in m.tool_calls or ()}
    for message in own:
        if message.role != "tool" or message.name is not None:
            continue
        name = names.get(message.tool_call_id or "")
        if name is None:
            raise errors.InvalidRequest('a tool message\'s "tool_call_id" names no call of this thread or of '
                                        "an earlier message of this call")
        message.name = name

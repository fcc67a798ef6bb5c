"""The ``threads`` tool: a client lists its conversation threads, or deletes one.

Also what ``llm-caller threads`` shows the operator (``cli.threads_cmd``): both read the
store through ``thread_summaries``. A thread's messages are never shown here, only its
size, age and the models that answered it.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.store.base import Store
from gateway.tool_schemas import THREAD_ID_PATTERN

__all__ = ["ThreadOut", "ThreadsInput", "ThreadsOutput", "run_threads", "thread_summaries"]


class ThreadsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["list", "delete"] = Field("list", description="list your threads, or delete one (thread_id)")
    thread_id: Annotated[str | None, Field(pattern=THREAD_ID_PATTERN,
                                           description="delete: the thread to delete")] = None

    @model_validator(mode="after")
    def _target(self) -> ThreadsInput:
        if self.action == "delete" and self.thread_id is None:
            raise ValueError('"delete" needs "thread_id"')
        if self.action == "list" and self.thread_id is not None:
            raise ValueError('"thread_id" is for "delete" only')
        return self


class ThreadOut(BaseModel):
    thread_id: str
    created_at: float = Field(description="seconds since the epoch")
    updated_at: float = Field(description="the last turn, seconds since the epoch")
    turns: int = Field(description="turns kept (sent as history on the next call)")
    tokens: int = Field(description="tokens of those turns: the providers' usage, else an estimate")
    dropped_turns: int = Field(description="oldest turns removed to keep the thread within its limits")
    models: list[str] = Field(description="provider/model of each kept turn's answer, first use first, no repeats")
    expires_at: float | None = Field(description="when it expires unless continued (seconds since the epoch)")


class ThreadsOutput(BaseModel):
    threads: list[ThreadOut] = Field(description="list: the caller's live threads, most recently used first")
    deleted: bool | None = Field(None, description="delete: whether the thread existed (and is now gone)")


async def thread_summaries(store: Store, owner: str, now: float) -> list[ThreadOut]:
    """``owner``'s live threads, most recently used first, with the models of their kept turns."""
    summaries = []
    for row in await store.list_threads(owner, now):
        found = await store.get_thread(row.thread_id, owner, now)
        turns = found[1] if found is not None else []
        models = list(dict.fromkeys(f"{t.provider}/{t.model}" for t in turns))
        summaries.append(ThreadOut(thread_id=row.thread_id, created_at=row.created_at, updated_at=row.updated_at,
                                   turns=row.turns, tokens=row.tokens, dropped_turns=row.dropped_turns,
                                   models=models, expires_at=row.expires_at))
    return summaries


async def run_threads(store: Store, owner: str, args: ThreadsInput, now: float | None = None) -> ThreadsOutput:
    """What the tool answers: the list (live at ``now``, default the clock), or whether the thread was deleted."""
    if args.action == "delete":
        assert args.thread_id is not None  # ThreadsInput requires it
        return ThreadsOutput(threads=[], deleted=await store.delete_thread(args.thread_id, owner))
    return ThreadsOutput(threads=await thread_summaries(store, owner, time.time() if now is None else now),
                         deleted=None)

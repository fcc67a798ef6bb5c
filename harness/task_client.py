"""A client runtime for MCP Tasks (``io.modelcontextprotocol/tasks``) on the official Python SDK.

The SDK 2.x client has no task runtime; it has the hooks to build one: a
``ClientExtension`` whose ``ResultClaim`` takes ``tools/call`` results of
``resultType: "task"`` and resolves them by polling. This module is that runtime, used by
the integration tests and usable by operators' scripts:

    async with task_client(url, token) as client:
        result = await client.call_tool("chatStream", {...})   # polls a task transparently
        handle = await start_call(client, "chat", {...})      # or drive it yourself:
        state = await get_task(client.session, handle.task_id)
        await cancel_task(client.session, handle.task_id)
        result = await wait_for(client.session, handle.task_id)  # also from a new session

Every ``tasks/*`` request carries ``Mcp-Name: <taskId>`` (``Request.name_param``) and the
extension in its ``_meta`` client capabilities (the SDK session adds both). Polling honours
the task's ``pollIntervalMs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal

import httpx2
from mcp.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, EmptyResult, Request, RequestParams, Result
from pydantic import ConfigDict, Field

__all__ = [
    "EXTENSION", "HINT_KEY", "TaskEnded", "TaskHandle", "TaskState", "TasksExtension", "cancel_task",
    "get_task", "start_call", "task_client", "update_task", "wait_for",
]

EXTENSION = "io.modelcontextprotocol/tasks"
HINT_KEY = "llm-caller/task"  # the gateway's own "make this call a task" hint (README, "Tasks")
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class _Task(Result):
    model_config = ConfigDict(extra="allow")

    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class TaskHandle(_Task):
    """A ``CreateTaskResult``: the answer to a ``tools/call`` the server made a task."""

    result_type: Literal["task"] = Field(alias="resultType")


class TaskState(_Task):
    """A ``tasks/get`` answer: the task, with ``result`` when completed and ``error`` when failed."""

    result_type: Literal["complete"] = Field(alias="resultType", default="complete")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskEnded(Exception):
    """The task ended ``failed`` (``error`` is the JSON-RPC error) or ``cancelled``."""

    def __init__(self, state: TaskState) -> None:
        detail = state.error or {}
        super().__init__(f"task {state.status}: {state.status_message or detail.get('message', '')}")
        self.state = state


class _TaskIdParams(RequestParams):
    task_id: str


class _UpdateParams(_TaskIdParams):
    input_responses: dict[str, Any] = Field(default_factory=dict)


class GetTaskRequest(Request[_TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class CancelTaskRequest(Request[_TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class UpdateTaskRequest(Request[_UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    name_param = "taskId"


async def get_task(session: ClientSession, task_id: str) -> TaskState:
    return await session.send_request(GetTaskRequest(params=_TaskIdParams(task_id=task_id)), TaskState)


async def cancel_task(session: ClientSession, task_id: str) -> None:
    await session.send_request(CancelTaskRequest(params=_TaskIdParams(task_id=task_id)), EmptyResult)


async def update_task(session: ClientSession, task_id: str, responses: dict[str, Any]) -> None:
    request = UpdateTaskRequest(params=_UpdateParams(task_id=task_id, input_responses=responses))
    await session.send_request(request, EmptyResult)


OnPoll = Callable[[TaskState], Awaitable[None] | None]


async def wait_for(session: ClientSession, task_id: str, *, poll_ms: int | None = None,
                   on_poll: OnPoll | None = None, timeout_s: float | None = None) -> CallToolResult:
    """Poll until the task ends; its ``CallToolResult``, or ``TaskEnded`` (failed/cancelled)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        state = await get_task(session, task_id)
        if on_poll is not None:
            maybe = on_poll(state)
            if maybe is not None:
                await maybe
        if state.status == "completed" and state.result is not None:
            return CallToolResult.model_validate(state.result)
        if state.status in TERMINAL:
            raise TaskEnded(state)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"task {state.status} after {timeout_s}s: {state.status_message}")
        await asyncio.sleep((state.poll_interval_ms or poll_ms or 1000) / 1000)


class TasksExtension(ClientExtension):
    """Opts in to tasks on every ``tools/call`` and resolves a task answer by polling it."""

    identifier = EXTENSION

    def __init__(self, on_created: Callable[[TaskHandle], None] | None = None,
                 on_poll: OnPoll | None = None) -> None:
        self._on_created = on_created
        self._on_poll = on_poll

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return (ResultClaim(result_type="task", model=TaskHandle, resolve=self._resolve),)

    async def _resolve(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        if self._on_created is not None:
            self._on_created(handle)
        return await wait_for(ctx.session, handle.task_id, poll_ms=handle.poll_interval_ms, on_poll=self._on_poll)


async def start_call(client: Client, name: str, arguments: dict[str, Any], *,
                     ask_for_task: bool = True) -> TaskHandle | CallToolResult:
    """Call a tool and return what the server answered: a task handle, or the plain result."""
    meta: dict[str, Any] = {HINT_KEY: True} if ask_for_task else {}
    answer = await client.session.call_tool(name, arguments, meta=meta or None, allow_claimed=True)  # type: ignore[arg-type]
    if isinstance(answer, TaskHandle | CallToolResult):
        return answer
    return TaskHandle.model_validate(answer.model_dump(by_alias=True))


@contextlib.asynccontextmanager
async def task_client(url: str, token: str, extension: TasksExtension | None = None,
                      timeout_s: float = 60.0) -> AsyncIterator[Client]:
    """The official SDK client (protocol 2026-07-28) with the tasks runtime, bearer ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout_s)) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="2026-07-28", extensions=[extension or TasksExtension()]) as client:
            yield client

"""The Tasks extension on the wire: its identifier, our hint key, error shapes, the ``Task`` view.

Times are ISO 8601 in UTC with milliseconds. A ``tasks/get`` answer inlines ``result`` (the
``CallToolResult``) when completed and ``error`` (the JSON-RPC error object) when failed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import mcp_types as types
import orjson
from mcp.shared.exceptions import MCPError

from gateway.store.records import TaskRow, TaskStatus
from shared import errors

__all__ = [
    "EXTENSION", "HINT_KEY", "created_view", "decode", "missing_capability", "not_found", "task_view",
]

EXTENSION = "io.modelcontextprotocol/tasks"
# The spec gives a client no way to ask for a task; this ``_meta`` key of ours does
# (``true``: make this call a task if the client opted in). Documented in the README.
HINT_KEY = "llm-caller/task"


def iso(seconds: float) -> str:
    """``2026-07-28T10:30:00.123Z`` for a ``time.time()`` value."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _base(row: TaskRow) -> dict[str, Any]:
    view: dict[str, Any] = {
        "taskId": row.task_id,
        "status": row.status.value,
        "createdAt": iso(row.created_at),
        "lastUpdatedAt": iso(row.updated_at),
        "ttlMs": row.ttl_ms,
        "pollIntervalMs": row.poll_interval_ms,
    }
    if row.status_message is not None:
        view["statusMessage"] = row.status_message
    return view


def created_view(row: TaskRow) -> dict[str, Any]:
    """The ``CreateTaskResult`` answering the ``tools/call``."""
    return {"resultType": "task", **_base(row)}


def task_view(row: TaskRow) -> dict[str, Any]:
    """The ``tasks/get`` answer (a ``DetailedTask``; ``resultType`` is ``complete``)."""
    view = {"resultType": "complete", **_base(row)}
    if row.status is TaskStatus.COMPLETED and row.result is not None:
        view["result"] = decode(row.result)
    if row.status is TaskStatus.FAILED:
        view["error"] = decode(row.error) if row.error is not None else internal_error("no error was recorded")
    return view


def decode(payload: bytes) -> Any:
    return orjson.loads(payload)


def internal_error(message: str) -> dict[str, Any]:
    """A JSON-RPC error object (code -32603) for a failed task."""
    return {"code": types.INTERNAL_ERROR, "message": message}


def lost_call_error(result: types.CallToolResult) -> dict[str, Any] | None:
    """The JSON-RPC error for a task whose call died with its process (the worker), else None.

    A tool error is a ``completed`` task (the extension's rule), except this one: issue #17
    asks that a task whose worker or gateway died mid-call be ``failed`` with a clear reason,
    so a client polling a task can tell "the call was lost, it was not re-run" from an answer.
    The taxonomy error rides in ``data``, as the tool result would have carried it.
    """
    if not result.is_error or not isinstance(result.structured_content, dict):
        return None
    error = result.structured_content.get("error")
    lost = errors.WorkerLost.type
    if not isinstance(error, dict) or lost not in (error.get("type"), error.get("cause")):
        return None  # a worker lost before or after the first chunk (then stream_interrupted)
    message = str(error.get("message") or "the worker running this call stopped; the call was not repeated")
    return {"code": types.INTERNAL_ERROR, "message": message, "data": error}


def not_found() -> MCPError:
    """Unknown, expired, or another client's id: one answer for all three, so none can be told apart."""
    return MCPError(types.INVALID_PARAMS, "Failed to retrieve task: task not found (unknown id, expired, "
                                          "or not this client's)")


def missing_capability() -> MCPError:
    """``tasks/*`` from a request that did not declare the extension (-32021, as specified)."""
    return MCPError(types.MISSING_REQUIRED_CLIENT_CAPABILITY, "Missing required client capability",
                    {"requiredCapabilities": {"extensions": {EXTENSION: {}}}})

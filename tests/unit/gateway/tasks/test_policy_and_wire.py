"""Which calls become tasks, and how a task row looks on the wire."""

from __future__ import annotations

import mcp_types as types
import orjson
import pytest

from gateway.store.records import TaskRow, TaskStatus
from gateway.tasks.policy import declared, wants_task
from gateway.tasks.wire import created_view, iso, task_view
from gateway.tool_schemas import ChatInput, EmbedInput
from shared.settings import StoreSettings

OPTED_IN = types.ClientCapabilities(extensions={"io.modelcontextprotocol/tasks": {}})


def _default(_provider: str | None) -> float:
    return 20.0


def test_only_a_2026_request_that_declares_the_extension_counts_as_opted_in() -> None:
    assert declared("2026-07-28", OPTED_IN)
    assert not declared("2025-11-25", OPTED_IN)
    assert not declared("2026-07-28", types.ClientCapabilities())
    assert not declared("2026-07-28", None)


@pytest.mark.parametrize(("args", "meta", "expected"), [
    (ChatInput(prompt="hi"), None, False),  # 20 s default timeout, threshold 30 s
    (ChatInput(prompt="hi", timeout_s=31), None, True),
    (ChatInput(prompt="hi", max_tokens=2000), None, True),  # 40 s at 50 tokens/s
    (ChatInput(prompt="hi", max_tokens=1000), None, False),
    (ChatInput(prompt="hi", reasoning={"effort": "high"}), None, True),
    (ChatInput(prompt="hi"), {"llm-caller/task": True}, True),
    (ChatInput(prompt="hi"), {"llm-caller/task": "yes"}, False),
    (EmbedInput(input="x", timeout_s=60), None, True),
])
def test_a_call_becomes_a_task_when_it_may_run_long_or_the_client_asks(
        args: ChatInput | EmbedInput, meta: dict[str, object] | None, expected: bool) -> None:
    assert wants_task(args, meta, 30.0, _default) is expected


def test_the_views_follow_the_extension_shapes() -> None:
    row = TaskRow("abc", "alice", "chat", TaskStatus.WORKING, 1_700_000_000.0, 1_700_000_001.5, 60_000, 500, "me")
    assert created_view(row) == {"resultType": "task", "taskId": "abc", "status": "working",
                                 "createdAt": "2023-11-14T22:13:20.000Z", "lastUpdatedAt": "2023-11-14T22:13:21.500Z",
                                 "ttlMs": 60_000, "pollIntervalMs": 500}
    row.status, row.result = TaskStatus.COMPLETED, orjson.dumps({"content": [], "isError": True})
    assert task_view(row)["resultType"] == "complete" and task_view(row)["result"]["isError"] is True
    row.status, row.result, row.error = TaskStatus.FAILED, None, orjson.dumps({"code": -32603, "message": "gone"})
    assert task_view(row)["error"] == {"code": -32603, "message": "gone"} and "result" not in task_view(row)
    assert iso(0.25) == "1970-01-01T00:00:00.250Z"


def test_the_inline_window_setting_takes_zero_to_mean_off_and_refuses_bad_values() -> None:
    assert StoreSettings.from_env({}).task_inline_s == 5.0
    assert StoreSettings.from_env({"LLMC_TASK_INLINE_S": "0"}).task_inline_s == 0.0
    assert StoreSettings.from_env({"LLMC_TASK_INLINE_S": "2.5"}).to_env()["LLMC_TASK_INLINE_S"] == "2.5"
    for bad, problem in [("-1", "0 or more"), ("soon", "is not a number"), ("inf", "0 or more")]:
        with pytest.raises(ValueError, match=problem):
            StoreSettings.from_env({"LLMC_TASK_INLINE_S": bad})

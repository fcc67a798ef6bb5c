"""MCP Tasks through the real stack: the official SDK client with the harness task runtime.

The stack runs with a short poll interval and lease so the tests stay quick; every call
goes to the emulators through the gateway and a worker, as a plain call does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from harness.task_client import TaskHandle, TaskState, cancel_task, get_task, start_call, task_client, wait_for
from tests.integration.conftest import run
from tests.integration.security_helpers import add_clients
from uat.conformance import run_conformance
from uat.node_tools import missing_reason
from uat.tasks_check import parse_detail, run_tasks_check

TASK_ENV = {"LLMC_TASK_POLL_MS": "200", "LLMC_TASK_LEASE_S": "2"}  # the default store: SQLite in the run folder
PROMPT = " ".join(["word"] * 40)
LONG_PROMPT = " ".join(["a"] * 100)  # the emulator echoes 200 characters: about 107 deltas


@pytest.fixture(scope="module")
def tbox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.05, heartbeat_s=0.25, env=TASK_ENV) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


async def _start(box: Sandbox, tool: str, arguments: dict[str, Any], token: str | None = None) -> TaskHandle:
    async with task_client(box.url, token or box.token) as client:
        handle = await start_call(client, tool, arguments)
    assert isinstance(handle, TaskHandle), f"expected a task, got {handle}"
    return handle


def test_a_streamed_call_becomes_a_task_with_progress_then_its_result(tbox: Sandbox) -> None:
    async def scenario() -> tuple[TaskHandle, list[TaskState], Any]:
        async with task_client(tbox.url, tbox.token) as client:
            handle = await start_call(client, "chatStream", {"prompt": PROMPT, "provider": "openai"})
            assert isinstance(handle, TaskHandle)
            polls: list[TaskState] = []
            result = await wait_for(client.session, handle.task_id, on_poll=polls.append, timeout_s=30)
        return handle, polls, result

    handle, polls, result = run(scenario())
    assert (handle.status, handle.ttl_ms, handle.poll_interval_ms) == ("working", 3600_000, 200)
    assert len(handle.task_id) >= 32 and handle.created_at.endswith("Z")
    streaming = [p for p in polls if p.status == "working" and (p.status_message or "").startswith("streaming")]
    assert streaming, [p.status_message for p in polls]
    assert "Hello from the" in (streaming[-1].status_message or "")
    chunks = result.structured_content["chunks"]
    assert polls[-1].status == "completed" and polls[-1].status_message == f"completed: {chunks} chunks"
    assert result.is_error is False and "word word" in result.structured_content["text"]
    lines = _tool_calls(tbox, result.structured_content["request_id"])
    assert [(line["tool"], line["outcome"]) for line in lines] == [("chatStream", "ok")]


def _tool_calls(box: Sandbox, request_id: str) -> list[dict[str, Any]]:
    time.sleep(0.3)  # a duplicate line would be written at about the same moment
    records = [orjson.loads(line) for line in (box.log_dir / "gateway.log").read_text().splitlines()]
    return [r for r in records if r.get("event") == "tool_call" and r.get("request_id") == request_id]


def test_cancel_mid_stream_stops_the_provider_request_within_a_second(tbox: Sandbox) -> None:
    with EmulatorControl(tbox.emulators.url("openai")) as emulator:
        emulator.reset_stats()

        async def scenario() -> tuple[float, TaskState]:
            async with task_client(tbox.url, tbox.token) as client:
                handle = await start_call(client, "chatStream", {"prompt": LONG_PROMPT, "provider": "openai"})
                assert isinstance(handle, TaskHandle)
                state = await get_task(client.session, handle.task_id)
                while "streaming: " not in (state.status_message or "") or " 0 chunks" in (state.status_message or ""):
                    await asyncio.sleep(0.1)
                    state = await get_task(client.session, handle.task_id)
                print("before cancel:", state.status_message.splitlines()[0] if state.status_message else None)
                sent = time.time()
                await cancel_task(client.session, handle.task_id)
                while state.status == "working":
                    await asyncio.sleep(0.1)
                    state = await get_task(client.session, handle.task_id)
            return sent, state

        sent, state = run(scenario())
        stats = emulator.stats()
    assert (state.status, state.result, state.error) == ("cancelled", None, None)
    print(f"provider stream closed {stats['last_left_at'] - sent:.3f} s after tasks/cancel")
    assert stats["streams_left"] == 1 and stats["last_left_at"] - sent < 1.0


def test_a_client_that_did_not_opt_in_never_gets_a_task_and_gets_32021_on_tasks(tbox: Sandbox) -> None:
    async def scenario() -> tuple[Any, MCPError]:
        async with tbox.client(mode="2026-07-28") as plain:
            result = await plain.call_tool("chat", {"prompt": "hi", "timeout_s": 600},
                                           meta={"llm-caller/task": True})  # type: ignore[typeddict-unknown-key]
            handle = await _start(tbox, "chat", {"prompt": "hi"})
            with pytest.raises(MCPError) as caught:
                await get_task(plain.session, handle.task_id)
        return result, caught.value

    result, error = run(scenario())
    assert result.is_error is False and "Hello from the" in result.structured_content["text"]
    assert error.code == -32021
    assert error.data == {"requiredCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}


def test_another_clients_task_is_as_missing_as_an_unknown_one(tbox: Sandbox) -> None:
    other = add_clients(tbox, intruder={})["intruder"]

    async def scenario() -> list[tuple[int, str]]:
        handle = await _start(tbox, "chat", {"prompt": "mine"})
        seen = []
        async with task_client(tbox.url, other) as client:
            for task_id, verb in [(handle.task_id, get_task), (handle.task_id, cancel_task),
                                  ("no-such-task", get_task), ("no-such-task", cancel_task)]:
                with pytest.raises(MCPError) as caught:
                    await verb(client.session, task_id)
                seen.append((caught.value.code, caught.value.message))
        async with task_client(tbox.url, tbox.token) as owner:
            state = await wait_for(owner.session, handle.task_id, timeout_s=30)
        assert state.is_error is False
        return seen

    seen = run(scenario())
    assert {code for code, _ in seen} == {-32602}
    assert len({message for _, message in seen}) == 1, seen


# The suite's tasks scenarios drive its reference server's own tools (slow_compute, greet,
# failing_job...); these are their checks that apply to any server.
CONFORMANCE_CHECKS_THAT_APPLY = {
    ("tasks-capability-negotiation", "tasks-extension-advertised"),
    ("tasks-capability-negotiation", "sep-2663-tasks-methods-non-declaring"),
    ("tasks-dispatch-and-envelope", "sep-2663-tasks-result-removed-method-not-found"),
    ("tasks-dispatch-and-envelope", "tasks-removed-tasks-list"),
    ("tasks-dispatch-and-envelope", "sep-2663-tasks-get-invalid-task-id-32602"),
    ("tasks-request-headers", "tasks-headers-reject-mismatched-method"),
}


NEEDS_NODE = pytest.mark.skipif(missing_reason() is not None, reason=f"needs the pinned Node tools: {missing_reason()}")


@NEEDS_NODE
def test_the_typescript_sdk_with_ext_tasks_completes_a_task_and_cancels_another(tbox: Sandbox) -> None:
    check = run_tasks_check(tbox.url, tbox.token)
    print(check.text())
    assert check.ok, check.detail
    outcome = parse_detail(check)
    completed = outcome["completed"]
    assert isinstance(completed, dict) and completed.pop("statuses")[-1] == "completed"
    assert completed == {"kind": "task", "status": "completed",
                         "text": "Hello from the OpenAI emulator. You said: tasks from TypeScript"}
    assert outcome["cancelled"] == {"kind": "task", "status": "cancelled"}


@NEEDS_NODE
def test_the_conformance_suites_tasks_checks_that_apply_to_any_server_pass(tbox: Sandbox) -> None:
    scenarios = tuple(sorted({scenario for scenario, _ in CONFORMANCE_CHECKS_THAT_APPLY}))
    report = run_conformance(tbox.url, tbox.token, scenarios)
    assert not report.errors, report.errors
    verdicts = {(c.scenario, c.check_id): c.status for c in report.checks}
    for check in sorted(verdicts):
        print(*check, verdicts[check])
    assert {verdicts.get(check) for check in CONFORMANCE_CHECKS_THAT_APPLY} == {"SUCCESS"}


def _raw_tasks_get(box: Sandbox, task_id: str, name_header: str | None) -> tuple[int, dict[str, Any]]:
    """One ``tasks/get`` over plain HTTP, with the 2026 envelope and ``Mcp-Name`` as given."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}}}
    headers = {"Authorization": f"Bearer {box.token}", "MCP-Protocol-Version": "2026-07-28",
               "Mcp-Method": "tasks/get", "Accept": "application/json, text/event-stream"}
    if name_header is not None:
        headers["Mcp-Name"] = name_header
    body = {"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {"taskId": task_id, "_meta": meta}}
    response = httpx.post(box.url, json=body, headers=headers, timeout=10)
    text = response.text
    payload = text.split("data: ", 1)[1] if text.startswith(("event:", "data:")) else text
    return response.status_code, orjson.loads(payload)


def test_tasks_requests_over_http_must_name_the_task_in_mcp_name(tbox: Sandbox) -> None:
    handle = run(_start(tbox, "chat", {"prompt": "named"}))
    answers = {case: _raw_tasks_get(tbox, handle.task_id, header)
               for case, header in [("right", handle.task_id), ("wrong", "another-id"), ("missing", None)]}
    for case, (status, reply) in answers.items():
        print(case, status, orjson.dumps(reply).decode()[:200])
    assert answers["right"][1]["result"]["taskId"] == handle.task_id
    assert answers["wrong"][1]["error"]["code"] == -32020
    assert answers["missing"][1]["error"]["code"] == -32020

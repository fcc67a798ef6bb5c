"""UAT runner logic for multi-call scenarios, emulator use and the TypeScript SDK client, without a stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from uat.emulator_access import EmulatorAccess
from uat.expectations import Observation
from uat.inspector_client import inspector_command
from uat.matrix import ClientChoice, grade_verdict, run_calls, run_matrix
from uat.scenarios import Scenario, ScenarioError, load_scenarios
from uat.steps import StepError, resolve_refs, step_scenario
from uat.ts_sdk_client import ts_observation

CALLS = {"tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}


def round_trip(**extra: Any) -> Scenario:
    follow = [{"role": "assistant", "content": "", "tool_calls": {"$result": "tool_calls"}},
              {"role": "tool", "tool_call_id": {"$result": "tool_calls.0.id"}, "content": "sunny"}]
    return Scenario.model_validate({
        "name": "rt", "description": "d", "tool": "chat", "arguments": {"prompt": "weather?"},
        "expect": {"structured_paths": {"finish_reason": {"equals": "tool_calls"}}},
        "then": [{"arguments": {"messages": follow}, "expect": {"text_contains": "sunny"}}], **extra})


def test_a_step_takes_values_from_the_previous_result() -> None:
    step = step_scenario(round_trip(), 1, CALLS)
    assert step.tool == "chat" and step.then == [] and step.expect.text_contains == ["sunny"]
    assistant, tool = step.arguments["messages"]
    assert assistant["tool_calls"] == CALLS["tool_calls"]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert resolve_refs({"ids": {"$result": "tool_calls.*.id"}}, CALLS) == {"ids": ["call_1"]}
    with pytest.raises(StepError, match=r"no tool_calls\.0\.id"):
        step_scenario(round_trip(), 1, {"tool_calls": []})


def test_step_references_and_emulator_use_are_checked_when_loaded(tmp_path: Path) -> None:
    def refused(body: dict[str, Any], match: str) -> None:
        (tmp_path / "bad.json").write_text(json.dumps({"name": "bad", "description": "d", "tool": "chat",
                                                       "expect": {}, **body}))
        with pytest.raises(ScenarioError, match=match):
            load_scenarios(tmp_path)

    refused({"arguments": {"x": {"$result": "text"}}}, "belong in \"then\" steps")
    refused({"then": [{"arguments": {"x": {"$result": "a", "b": 1}}, "expect": {}}]}, "alone")
    refused({"expect": {"is_error": True}, "then": [{"expect": {}}]}, "succeeds")
    refused({"emulator_faults": {"nope": []}}, "no emulator kind 'nope'")
    refused({"emulator_faults": {"openai": [{"mode": "schema_violaton"}]}}, "openai fault 0: mode")
    refused({"emulator_requests": {"openai": {"/v1/chat/completions": -1}}}, "greater than or equal")


def test_scenarios_are_picked_by_name_or_pattern() -> None:
    features = load_scenarios(only=["feature-*"])
    assert len(features) >= 8 and all(s.name.startswith("feature-") for s in features)
    assert [s.name for s in load_scenarios(only=["tools-list"])] == ["tools-list"]
    with pytest.raises(ScenarioError, match="no-such-"):
        load_scenarios(only=["no-such-*"])


def test_each_step_is_judged_and_named() -> None:
    seen: list[dict[str, Any]] = []

    async def observe(call: Scenario) -> tuple[Observation, float]:
        seen.append(call.arguments)
        if len(seen) == 1:
            return Observation(structured={"finish_reason": "tool_calls", **CALLS}), 2.0
        return Observation(text="cloudy", structured={}), 3.0

    verdict, ms = asyncio.run(run_calls(observe, round_trip()))
    assert ms == 5.0 and len(seen) == 2 and seen[1]["messages"][1]["tool_call_id"] == "call_1"
    assert verdict.problems == ["step 2: text does not contain 'sunny': 'cloudy'"]
    assert grade_verdict("typescript-sdk", round_trip(), verdict, ms).status == "FAIL"

    async def first_fails(call: Scenario) -> tuple[Observation, float]:
        seen.append(call.arguments)
        return Observation(structured={"finish_reason": "stop"}), 1.0

    seen.clear()
    verdict, _ = asyncio.run(run_calls(first_fails, round_trip()))
    assert len(seen) == 1 and verdict.problems == ["finish_reason: expected 'tool_calls', got 'stop'"]


def test_emulator_use_needs_the_sandbox_emulators() -> None:
    faulty = round_trip(emulator_faults={"openai": [{"mode": "schema_violation"}]},
                        emulator_requests={"lmstudio": {"/v1/chat/completions": 0}})
    assert EmulatorAccess().missing(round_trip()) is None
    reason = EmulatorAccess({"openai": "http://127.0.0.1:1"}).missing(faulty)
    assert reason is not None and "lmstudio" in reason and "--sandbox" in reason and "openai" not in reason


def test_an_unreachable_emulator_fails_the_cell_without_calling() -> None:
    faulty = round_trip(emulator_faults={"openai": [{"mode": "schema_violation"}]})
    (row,) = run_matrix("http://127.0.0.1:1/mcp", "t", [faulty], ClientChoice(use_inspector=False, use_ts_sdk=False),
                        EmulatorAccess({"openai": "http://127.0.0.1:1"}))
    (cell,) = row.cells.values()
    assert cell.status == "FAIL" and cell.detail.startswith("could not set up the emulators: ConnectError"), cell


def _done(stdout: str, code: int = 0, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["node"], code, stdout, stderr)


def test_the_typescript_client_output_becomes_an_observation() -> None:
    call = round_trip()
    result = {"isError": False, "content": [{"type": "text", "text": "hi"}], "structuredContent": {"text": "hi"}}
    seen, ms = ts_observation(call, _done("noise\n" + json.dumps({"result": result, "progress": ["h", "i"],
                                                                    "call_ms": 4.5})))
    assert (seen.text, seen.structured, seen.progress, seen.failure, ms) == ("hi", {"text": "hi"}, ["h", "i"], None,
                                                                             4.5)
    seen, ms = ts_observation(call, _done(json.dumps({"failure": "Error: 401", "auth_rejected": True})))
    assert seen.auth_rejected and seen.failure == "Error: 401" and ms is None
    seen, _ = ts_observation(call, _done("", 2, "ts_sdk_client: stdin needs url"))
    assert seen.failure == "exit 2: ts_sdk_client: stdin needs url"


def test_the_inspector_gets_nested_arguments_as_json(tmp_path: Path) -> None:
    call = step_scenario(round_trip(), 1, CALLS)
    command = inspector_command(tmp_path / "mcp.json", call, "legacy")
    (pair,) = [arg for arg in command if arg.startswith("messages=")]
    assert json.loads(pair.removeprefix("messages="))[1]["tool_call_id"] == "call_1"

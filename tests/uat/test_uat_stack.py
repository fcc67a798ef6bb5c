"""The UAT runner against a real sandbox stack: the three clients, every scenario, and conformance.

Needs the pinned Node tools (`make node-tools`; `.ci/run` installs them), because two of
the clients (the MCP Inspector and the TypeScript SDK) and the conformance suite are Node
programs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.sandbox import Sandbox
from uat import run_uat
from uat.conformance import EXPECTED_FAILURES, run_conformance
from uat.emulator_access import sandbox_access
from uat.matrix import ClientChoice, Row, run_matrix
from uat.node_tools import missing_reason
from uat.scenarios import Scenario, load_scenarios

_MISSING = missing_reason()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"UAT needs the pinned Node tools: {_MISSING}"),
]

# The only conformance checks allowed to fail, each because it cannot apply to this server
# (the reasons are in uat/conformance.py). Anything else failing, or one of these passing,
# fails the test, so the list has to be kept true.
ONLY_EXPECTED_FAILURES = {
    # These call the suite's own diagnostic tools, which only its reference server has.
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability"),  # test_missing_capability
    ("server-stateless", "sep-2575-missing-capability-http-400"),  # test_missing_capability
    ("server-stateless", "sep-2575-http-server-no-independent-requests-on-stream"),  # test_streaming_elicitation
    ("server-stateless", "sep-2575-server-no-log-without-loglevel"),  # test_logging_tool
    # These list prompts/resources, which the gateway does not declare; -32601 is correct.
    ("caching", "sep-2549-prompts-list-caching-hints"),
    ("caching", "sep-2549-resources-list-caching-hints"),
    ("caching", "sep-2549-resources-templates-list-caching-hints"),
}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.02) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


CHOICE = ClientChoice()


@pytest.fixture(scope="module")
def rows(box: Sandbox) -> list[Row]:
    """Every shipped scenario through the three clients, once for the tests below."""
    started = time.perf_counter()
    ran = run_matrix(box.url, box.token, load_scenarios(), CHOICE, sandbox_access(box))
    cells = [cell for row in ran for cell in row.cells.values()]
    print(f"UAT matrix: {len(ran)} scenarios x {len(CHOICE.labels)} clients, "
          f"{sum(c.status == 'PASS' for c in cells)} PASS of {len(cells)} in {time.perf_counter() - started:.1f}s")
    return ran


def _needs_progress(scenario: Scenario) -> bool:
    """Some call of the scenario (the first or a later step) expects progress notifications."""
    return any(expect.needs_progress for expect in [scenario.expect, *(step.expect for step in scenario.then)])


@pytest.mark.timeout(400)
def test_every_scenario_in_every_client(rows: list[Row]) -> None:
    sdk, inspector, typescript = CHOICE.labels
    failures = [f"{row.scenario.name} / {label}: {cell.status} {cell.detail}"
                for row in rows for label, cell in row.cells.items() if cell.failed]
    assert not failures, "\n".join(failures)
    for row in rows:
        # Both SDKs see everything, progress included: they must pass outright.
        assert row.cells[sdk].status == "PASS", (row.scenario.name, row.cells[sdk])
        assert row.cells[typescript].status == "PASS", (row.scenario.name, row.cells[typescript])
        # The Inspector is N/A exactly where progress is expected; XFAIL only for known issues.
        cell = row.cells[inspector]
        if _needs_progress(row.scenario):
            assert cell.status == "N/A", (row.scenario.name, cell)
        else:
            assert cell.status in ("PASS", "XFAIL"), (row.scenario.name, cell)
    pilots = {row.scenario.pilot for row in rows}
    assert {"coding-assistant", "rag-tool"} <= pilots


def _sends_tool_result(scenario: Scenario) -> bool:
    """A later step sends a ``tool`` message back (the second half of a round trip)."""
    return any(isinstance(message, dict) and message.get("role") == "tool"
               for step in scenario.then for message in step.arguments.get("messages", []))


def _has_image(arguments: dict[str, Any], key: str) -> bool:
    """A message part is an image given by ``key`` ("data": MCP image content, "url": a data: URL)."""
    messages = arguments.get("messages")
    return isinstance(messages, list) and any(
        isinstance(part, dict) and part.get("type") == "image" and key in part
        for message in messages if isinstance(content := message.get("content"), list) for part in content)


def test_the_chat_features_pass_in_every_client(rows: list[Row]) -> None:
    """Issue 16's UAT: structured output, an image and a tool-call round trip, in all three clients."""
    features = [row for row in rows if row.scenario.name.startswith("feature-")]
    for row in features:
        statuses = {label: cell.status for label, cell in row.cells.items()}
        expected = {label: "PASS" for label in CHOICE.labels}
        if _needs_progress(row.scenario):
            expected[CHOICE.labels[1]] = "N/A"  # the Inspector's CLI shows no progress
        assert statuses == expected, (row.scenario.name, {k: c.detail for k, c in row.cells.items()})
    chosen = [row.scenario for row in features]
    schema_ok = {s.arguments["provider"] for s in chosen if "response_format" in s.arguments and not s.expect.is_error}
    schema_bad = [s for s in chosen if s.expect.error_type == "invalid_output" and s.emulator_faults]
    assert len(schema_ok) >= 2 and schema_bad, [s.name for s in chosen]
    assert any(_has_image(s.arguments, "data") and not s.expect.is_error for s in chosen)
    assert any(_has_image(s.arguments, "url") and not s.expect.is_error for s in chosen)
    assert any(s.expect.error_type == "unsupported" and _has_image(s.arguments, "data")
               and s.emulator_requests for s in chosen)
    round_trips = {s.tool for s in chosen if "tool_choice" in s.arguments and _sends_tool_result(s)}
    assert round_trips == {"chat", "chatStream"}, [s.name for s in chosen]


@pytest.mark.timeout(300)
def test_conformance_fails_only_where_it_cannot_apply(box: Sandbox) -> None:
    assert set(EXPECTED_FAILURES) == ONLY_EXPECTED_FAILURES
    report = run_conformance(box.url, box.token)
    assert not report.errors, report.errors
    assert {check.scenario for check in report.checks} == {
        "server-stateless", "tools-list", "dns-rebinding-protection", "caching", "http-header-validation"}
    assert report.failed_keys == ONLY_EXPECTED_FAILURES, [
        f"{c.scenario} / {c.check_id}: {c.message}" for c in report.unexpected_failures]
    assert report.ok
    passed = {(c.scenario, c.check_id) for c in report.checks if c.status == "SUCCESS"}
    assert ("dns-rebinding-protection", "localhost-host-rebinding-rejected") in passed
    assert ("tools-list", "tools-list") in passed


def test_runner_command_line(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_uat.main(["--url", box.url, "--token", box.token, "--scenario", "tools-list",
                         "--scenario", "auth-invalid-token"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tools-list" in out and "auth-invalid-token" in out and "UAT OK" in out
    # A running stack's emulators are out of reach: scenarios that use them are N/A, never run.
    code = run_uat.main(["--url", box.url, "--token", box.token, "--scenario", "feature-json-schema-violation-*"])
    out = capsys.readouterr().out
    assert code == 0 and "Scenarios: 0 PASS, 6 N/A" in out and "only a --sandbox run has" in out, out
    assert run_uat.main(["--url", "http://192.0.2.1:8765/mcp", "--token", "x"]) == 2

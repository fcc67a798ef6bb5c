"""The official MCP conformance suite (``conformance server``) against the gateway.

The suite's server runner cannot send HTTP headers (no option, no environment
variable), so it reaches the gateway through ``BearerProxy``, which adds only the bearer
token. The scenarios are the ones that apply to any server, whatever its tools.

Some checks can never pass against a server that is not the suite's own reference
server: they call diagnostic tools only that server has, or list kinds of things the
gateway does not offer. Those are listed in ``EXPECTED_FAILURES`` with the reason;
every other failure, and any expected failure that stops failing, fails the run.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from uat.auth_proxy import BearerProxy
from uat.node_tools import tool_environment, tool_path

__all__ = ["EXPECTED_FAILURES", "SCENARIOS", "CheckResult", "ConformanceReport", "run_conformance"]

SCENARIOS = ("server-stateless", "tools-list", "dns-rebinding-protection", "caching", "http-header-validation")

_SUITE_TOOL = "calls the suite's own diagnostic tool {tool!r}, which only its reference server has"
_NO_CAPABILITY = ("calls {method} although the gateway declares no {kind} capability in server/discover; "
                  "its -32601 Method not found is the answer the spec asks for")

EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability"):
        _SUITE_TOOL.format(tool="test_missing_capability"),
    ("server-stateless", "sep-2575-missing-capability-http-400"):
        _SUITE_TOOL.format(tool="test_missing_capability"),
    ("server-stateless", "sep-2575-http-server-no-independent-requests-on-stream"):
        _SUITE_TOOL.format(tool="test_streaming_elicitation"),
    ("server-stateless", "sep-2575-server-no-log-without-loglevel"):
        _SUITE_TOOL.format(tool="test_logging_tool"),
    ("caching", "sep-2549-prompts-list-caching-hints"):
        _NO_CAPABILITY.format(method="prompts/list", kind="prompts"),
    ("caching", "sep-2549-resources-list-caching-hints"):
        _NO_CAPABILITY.format(method="resources/list", kind="resources"),
    ("caching", "sep-2549-resources-templates-list-caching-hints"):
        _NO_CAPABILITY.format(method="resources/templates/list", kind="resources"),
}

_TIMEOUT_S = 180


@dataclass(frozen=True)
class CheckResult:
    scenario: str
    check_id: str
    status: str  # SUCCESS, FAILURE, WARNING, SKIPPED, INFO
    message: str


@dataclass
class ConformanceReport:
    checks: list[CheckResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed_keys(self) -> set[tuple[str, str]]:
        return {(c.scenario, c.check_id) for c in self.checks if c.status == "FAILURE"}

    @property
    def unexpected_failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "FAILURE" and (c.scenario, c.check_id) not in EXPECTED_FAILURES]

    @property
    def stale_expectations(self) -> list[tuple[str, str]]:
        """Expected failures that did not fail in a scenario that ran: the list needs updating."""
        ran = {c.scenario for c in self.checks}
        return sorted(key for key in EXPECTED_FAILURES if key[0] in ran and key not in self.failed_keys)

    @property
    def ok(self) -> bool:
        return not (self.errors or self.unexpected_failures or self.stale_expectations)


def _read_checks(scenario: str, folder: Path) -> list[CheckResult]:
    found = sorted(folder.glob("*/checks.json"))
    if not found:
        raise FileNotFoundError(f"{scenario}: the suite wrote no checks.json")
    raw = json.loads(found[-1].read_text())
    # INFO entries are the suite's log of requests and responses, not verdicts.
    return [CheckResult(scenario, str(c["id"]), str(c["status"]), str(c.get("errorMessage") or ""))
            for c in raw if c.get("status") != "INFO"]


def _run_scenario(url: str, scenario: str, out: Path, report: ConformanceReport) -> None:
    command = [str(tool_path("conformance")), "server", "--url", url, "--scenario", scenario, "-o", str(out)]
    try:
        done = subprocess.run(command, env=tool_environment(), capture_output=True, text=True, timeout=_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        report.errors.append(f"{scenario}: no result within {_TIMEOUT_S}s")
        return
    try:
        report.checks.extend(_read_checks(scenario, out))
    except (OSError, ValueError, KeyError) as exc:
        report.errors.append(f"{scenario}: {exc}; suite output: {(done.stdout + done.stderr)[-600:]}")


def run_conformance(url: str, token: str, scenarios: tuple[str, ...] = SCENARIOS) -> ConformanceReport:
    report = ConformanceReport()
    with tempfile.TemporaryDirectory(prefix="llmc-conformance-") as scratch, BearerProxy(url, token) as proxy:
        for scenario in scenarios:
            _run_scenario(proxy.url, scenario, Path(scratch) / scenario, report)
    return report

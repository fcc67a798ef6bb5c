"""Every scenario through every client: one graded cell per (scenario, client).

A client runs a scenario's first call and then each ``then`` step (``uat.steps``) while
everything so far passed; the cell is the verdict on all of them, and its latency their sum.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx2

from uat.emulator_access import EmulatorAccess
from uat.expectations import Observation, Verdict, judge
from uat.inspector_client import observe_inspector
from uat.known_issues import known_issue_for
from uat.scenarios import Scenario
from uat.sdk_client import observe_sdk
from uat.steps import StepError, step_scenario
from uat.ts_sdk_client import observe_ts_sdk

__all__ = ["Cell", "ClientChoice", "Row", "grade", "grade_verdict", "run_calls", "run_matrix"]

Status = Literal["PASS", "FAIL", "N/A", "XFAIL", "XPASS"]
# One client making one call: what it saw and the latency in ms.
Observer = Callable[[Scenario], Awaitable[tuple[Observation, float]]]


@dataclass(frozen=True)
class Cell:
    status: Status
    latency_ms: float
    detail: str = ""
    issue: str | None = None  # the known-issue key behind an XFAIL or XPASS

    @property
    def failed(self) -> bool:
        return self.status in ("FAIL", "XPASS")


@dataclass
class Row:
    scenario: Scenario
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientChoice:
    sdk_mode: str = "auto"
    inspector_era: str = "legacy"
    use_inspector: bool = True
    use_ts_sdk: bool = True

    @property
    def clients(self) -> tuple[tuple[str, str], ...]:
        """(client, column label) for each client of the run, in column order."""
        chosen = [("python-sdk", f"python-sdk ({self.sdk_mode})")]
        if self.use_inspector:
            chosen.append(("inspector", f"inspector ({self.inspector_era})"))
        if self.use_ts_sdk:
            chosen.append(("typescript-sdk", "typescript-sdk (v1)"))
        return tuple(chosen)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for _, label in self.clients)


def grade_verdict(client: str, scenario: Scenario, verdict: Verdict, latency_ms: float) -> Cell:
    issue = known_issue_for(client, scenario)
    if verdict.problems:
        text = "; ".join(verdict.problems)
        if issue is not None and issue.signature in text:
            return Cell("XFAIL", latency_ms, f"known gateway issue {issue.key}: {text[:160]}", issue.key)
        return Cell("FAIL", latency_ms, text)
    if issue is not None:
        return Cell("XPASS", latency_ms, f"known issue {issue.key} no longer reproduces: remove it from "
                                         "uat/known_issues.py", issue.key)
    if verdict.unobservable:
        return Cell("N/A", latency_ms, f"{client} cannot observe {', '.join(verdict.unobservable)} "
                                       "(its CLI prints only the final result); the rest of the scenario passed")
    return Cell("PASS", latency_ms)


def grade(client: str, scenario: Scenario, seen: Observation, latency_ms: float) -> Cell:
    """The cell for a one-call observation."""
    return grade_verdict(client, scenario, judge(scenario, seen), latency_ms)


async def run_calls(observe: Observer, scenario: Scenario) -> tuple[Verdict, float]:
    """The scenario's first call, then each step while nothing failed; problems name their step."""
    seen, total_ms = await observe(scenario)
    verdict = judge(scenario, seen)
    for index in range(1, len(scenario.then) + 1):
        if verdict.problems:
            break
        label = f"step {index + 1}"
        try:
            call = step_scenario(scenario, index, seen.structured)
        except StepError as exc:
            verdict.problems.append(f"{label}: {exc}")
            break
        seen, ms = await observe(call)
        total_ms += ms
        found = judge(call, seen)
        verdict.problems += [f"{label}: {problem}" for problem in found.problems]
        verdict.unobservable += [f"{what} ({label})" for what in found.unobservable]
    return verdict, total_ms


def _observer(client: str, url: str, token: str, choice: ClientChoice, scratch: Path) -> Observer:
    async def observe(call: Scenario) -> tuple[Observation, float]:
        if client == "python-sdk":
            return await observe_sdk(url, token, call, choice.sdk_mode)
        if client == "inspector":
            return await asyncio.to_thread(observe_inspector, url, token, call, scratch, choice.inspector_era)
        return await asyncio.to_thread(observe_ts_sdk, url, token, call)
    return observe


async def _cell(client: str, observe: Observer, scenario: Scenario, emulators: EmulatorAccess) -> Cell:
    if (reason := emulators.missing(scenario)) is not None:
        return Cell("N/A", 0.0, reason)
    try:
        before = await asyncio.to_thread(emulators.prepare, scenario)
    except httpx2.HTTPError as exc:
        return Cell("FAIL", 0.0, f"could not set up the emulators: {type(exc).__name__}: {exc}")
    try:
        verdict, ms = await run_calls(observe, scenario)
    finally:
        try:
            problems = await asyncio.to_thread(emulators.finish, scenario, before)
        except httpx2.HTTPError as exc:
            problems = [f"could not read the emulators back: {type(exc).__name__}: {exc}"]
    verdict.problems += problems
    return grade_verdict(client, scenario, verdict, ms)


async def _row(url: str, token: str, scenario: Scenario, choice: ClientChoice, scratch: Path,
               emulators: EmulatorAccess) -> Row:
    row = Row(scenario)
    for client, label in choice.clients:
        row.cells[label] = await _cell(client, _observer(client, url, token, choice, scratch), scenario, emulators)
    return row


def run_matrix(url: str, token: str, scenarios: list[Scenario], choice: ClientChoice,
               emulators: EmulatorAccess | None = None) -> list[Row]:
    """Scenarios run one after another, so latencies are not skewed by each other.

    ``emulators`` reaches the emulators' control API for scenarios that queue faults or count
    requests; without it their cells are N/A.
    """
    reach = emulators if emulators is not None else EmulatorAccess()

    async def run_all(scratch: Path) -> list[Row]:
        return [await _row(url, token, scenario, choice, scratch, reach) for scenario in scenarios]

    with tempfile.TemporaryDirectory(prefix="llmc-uat-") as scratch:
        return asyncio.run(run_all(Path(scratch)))

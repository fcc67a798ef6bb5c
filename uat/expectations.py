"""Judging what a client observed against a scenario's expectations, client-agnostically.

Both clients reduce what they saw to an ``Observation``; the same ``judge`` then decides,
so the two columns of the report can only differ because the clients behaved
differently, never because they were checked differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.tool_names import TOOL_NAMES
from uat.scenarios import Expect, PathCheck, Scenario

__all__ = ["MISSING", "Observation", "Verdict", "judge", "resolve_path"]

MISSING = object()


@dataclass
class Observation:
    """What one client saw for one scenario."""

    is_error: bool = False
    # structuredContent of a tools/call, or the whole result of a tools/list, as wire JSON.
    structured: Any = None
    text: str = ""
    # Progress messages in arrival order; None when the client cannot observe progress.
    progress: list[str] | None = None
    auth_rejected: bool = False
    # Set when the client itself failed (exception, non-zero exit): what it said.
    failure: str | None = None


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    # Expectations this client had no way to check (reported as N/A, never as PASS).
    unobservable: list[str] = field(default_factory=list)


def resolve_path(data: Any, path: str) -> list[Any]:
    """Values at a dotted path; ``*`` fans out over a list. A missing step yields ``MISSING``."""
    values = [data]
    for step in path.split("."):
        following: list[Any] = []
        for value in values:
            if step == "*" and isinstance(value, list):
                following.extend(value)
            elif isinstance(value, list) and step.isdigit():
                following.append(value[int(step)] if int(step) < len(value) else MISSING)
            elif isinstance(value, dict):
                following.append(value.get(step, MISSING))
            else:
                following.append(MISSING)
        values = following
    return values


def _check_value(path: str, value: Any, check: PathCheck) -> str | None:
    present = value is not MISSING
    if check.exists is not None:
        return None if present == check.exists else f"{path}: expected {'present' if check.exists else 'absent'}"
    if not present:
        return f"{path}: missing"
    if "equals" in check.model_fields_set:
        return None if value == check.equals else f"{path}: expected {check.equals!r}, got {value!r}"
    if check.length is not None:
        size = len(value) if isinstance(value, (list, str, dict)) else None
        return None if size == check.length else f"{path}: expected length {check.length}, got {size}"
    if check.contains is not None:
        ok = isinstance(value, str) and check.contains in value
        return None if ok else f"{path}: expected text containing {check.contains!r}, got {value!r}"
    return None


def _check_paths(structured: Any, checks: dict[str, PathCheck]) -> list[str]:
    problems = []
    for path, check in checks.items():
        for value in resolve_path(structured, path):
            problem = _check_value(path, value, check)
            if problem:
                problems.append(problem)
                break
    return problems


def _check_progress(expect: Expect, seen: Observation, verdict: Verdict) -> None:
    if not expect.needs_progress:
        return
    if seen.progress is None:
        verdict.unobservable.append("progress notifications")
        return
    if expect.min_progress is not None and len(seen.progress) < expect.min_progress:
        verdict.problems.append(f"expected at least {expect.min_progress} progress notifications, got "
                                f"{len(seen.progress)}")
    if expect.progress_joins_to_text and "".join(seen.progress) != seen.text:
        verdict.problems.append("progress messages do not add up to the final text")


def _check_registered_tools(structured: Any) -> list[str]:
    """tools/list names exactly the registered tools (``shared.tool_names``), in their order."""
    listed = [tool.get("name") for tool in resolve_path(structured, "tools.*") if isinstance(tool, dict)]
    if listed == list(TOOL_NAMES):
        return []
    return [f"tools: expected {list(TOOL_NAMES)}, got {listed}"]


def judge(scenario: Scenario, seen: Observation) -> Verdict:
    expect = scenario.expect
    verdict = Verdict()
    if expect.auth_rejected or seen.auth_rejected:
        if expect.auth_rejected != seen.auth_rejected:
            verdict.problems.append(f"auth rejected: expected {expect.auth_rejected}, got {seen.auth_rejected}"
                                    + (f" ({seen.failure})" if seen.failure else ""))
        return verdict
    if seen.failure is not None:
        verdict.problems.append(f"client failed: {seen.failure}")
        return verdict
    if seen.is_error != expect.is_error:
        verdict.problems.append(f"isError: expected {expect.is_error}, got {seen.is_error} ({seen.text[:200]!r})")
    if expect.error_type is not None:
        verdict.problems.extend(_check_paths(seen.structured, {"error.type": PathCheck(equals=expect.error_type)}))
    verdict.problems.extend(f"text does not contain {needle!r}: {seen.text[:200]!r}"
                            for needle in expect.text_contains if needle not in seen.text)
    verdict.problems.extend(_check_paths(seen.structured, expect.structured_paths))
    if expect.registered_tools:
        verdict.problems.extend(_check_registered_tools(seen.structured))
    _check_progress(expect, seen, verdict)
    return verdict

"""A scenario's calls in order: the first as written, then each ``then`` step.

A step's arguments may hold ``{"$result": "dotted.path"}``: the value at that path in the
previous call's structured result, as the client that made the call saw it (so a tool
call's id goes back exactly as that client received it). Each call is a ``Scenario`` of
its own, so every client runs and ``judge`` checks a step like any other scenario.
"""

from __future__ import annotations

from typing import Any

from uat.expectations import MISSING, resolve_path
from uat.scenarios import RESULT_REF, Scenario

__all__ = ["StepError", "resolve_refs", "step_scenario"]


class StepError(Exception):
    """A step refers to a value the previous result does not have."""


def resolve_refs(value: Any, previous: Any) -> Any:
    """``value`` with every ``{"$result": path}`` replaced by the value at ``path`` in ``previous``."""
    if isinstance(value, dict):
        if RESULT_REF in value:
            return _lookup(previous, str(value[RESULT_REF]))
        return {key: resolve_refs(item, previous) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_refs(item, previous) for item in value]
    return value


def _lookup(previous: Any, path: str) -> Any:
    found = resolve_path(previous, path)
    if "*" in path.split("."):
        if any(item is MISSING for item in found):
            raise StepError(f"the previous result has no {path}")
        return found
    if found[0] is MISSING:
        raise StepError(f"the previous result has no {path}")
    return found[0]


def step_scenario(scenario: Scenario, index: int, previous: Any) -> Scenario:
    """The call of step ``index`` (1-based: 1 is the first ``then`` step) with its references resolved."""
    step = scenario.then[index - 1]
    return scenario.model_copy(update={
        "tool": step.tool or scenario.tool,
        "arguments": resolve_refs(step.arguments, previous),
        "expect": step.expect,
        "then": [],
        "emulator_faults": {},
        "emulator_requests": {},
    })

"""A scenario's use of the emulators around one client's run: faults to queue, requests to count.

Only a run on the sandbox's own emulators knows their control URLs (``--sandbox``, or a
test's ``Sandbox``); against any other stack a scenario with ``emulator_faults`` or
``emulator_requests`` cannot be set up or checked, and its cells say so (N/A) instead of
passing or failing. The fault queue is emptied before and after each client's run, so a
fault one client did not use up can never strike another client's call. Request counts
are the difference of the emulator's per-path counters across the run (all its steps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulators.control import EmulatorControl
from uat.scenarios import Scenario

if TYPE_CHECKING:
    from harness.sandbox import Sandbox

__all__ = ["Counts", "EmulatorAccess", "sandbox_access"]

# Emulator kind -> request path -> requests served so far.
Counts = dict[str, dict[str, int]]


def _kinds(scenario: Scenario) -> list[str]:
    return sorted({*scenario.emulator_faults, *scenario.emulator_requests})


@dataclass(frozen=True)
class EmulatorAccess:
    """Emulator kind -> its base URL (``Sandbox.emulators.url(kind)``); empty when none are reachable."""

    urls: Mapping[str, str] = field(default_factory=dict)

    def missing(self, scenario: Scenario) -> str | None:
        """Why this run cannot set up or check the scenario's emulator use, or None when it can."""
        absent = [kind for kind in _kinds(scenario) if kind not in self.urls]
        if not absent:
            return None
        return f"needs the control API of the {', '.join(absent)} emulator, which only a --sandbox run has; not run"

    def _counts(self, kind: str) -> dict[str, int]:
        with EmulatorControl(self.urls[kind]) as control:
            return {str(path): int(n) for path, n in control.stats()["by_path"].items()}

    def prepare(self, scenario: Scenario) -> Counts:
        """Queue the scenario's faults; returns the request counters to compare with afterwards."""
        for kind, specs in scenario.emulator_faults.items():
            with EmulatorControl(self.urls[kind]) as control:
                control.clear_faults()
                control.add_faults(*specs)
        return {kind: self._counts(kind) for kind in scenario.emulator_requests}

    def finish(self, scenario: Scenario, before: Counts) -> list[str]:
        """Clear what is left of the faults; a problem for each request count not as expected."""
        for kind in scenario.emulator_faults:
            with EmulatorControl(self.urls[kind]) as control:
                control.clear_faults()
        problems = []
        for kind, expected in scenario.emulator_requests.items():
            after = self._counts(kind)
            for path, count in expected.items():
                made = after.get(path, 0) - before[kind].get(path, 0)
                if made != count:
                    problems.append(f"{kind} emulator: expected {count} request(s) to {path}, got {made}")
        return problems


def sandbox_access(box: Sandbox) -> EmulatorAccess:
    """The emulators of every provider kind a sandbox runs."""
    kinds = {provider.kind for provider in box.providers.providers.values()}
    return EmulatorAccess({kind: box.emulators.url(kind) for kind in kinds})

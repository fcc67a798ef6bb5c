"""Known, reported gateway defects that a UAT client trips over, each with its signature.

A cell whose failure matches an issue here is reported XFAIL (with the issue id) instead
of FAIL: the defect is real and stays visible in every report, but it does not hide new
failures behind one red run. The match is on the client *and* a substring of its error
text, so any other failure in the same cell is still a FAIL. When the gateway is fixed
the cell passes, is reported XPASS, and counts as a failure until the entry is removed
here, so a stale entry cannot linger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from uat.scenarios import Scenario

__all__ = ["KNOWN_ISSUES", "KnownIssue", "known_issue_for"]


@dataclass(frozen=True)
class KnownIssue:
    key: str
    client: str
    summary: str
    applies: Callable[[Scenario], bool]
    signature: str


# G1 (error results' structuredContent outside the declared outputSchema) is fixed: each
# tool's outputSchema now admits its success shape or the {"error": {...}} envelope.
KNOWN_ISSUES: tuple[KnownIssue, ...] = ()


def known_issue_for(client: str, scenario: Scenario) -> KnownIssue | None:
    return next((issue for issue in KNOWN_ISSUES if issue.client == client and issue.applies(scenario)), None)

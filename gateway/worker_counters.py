"""Monotonic totals of the counters a worker reports, across that worker's restarts.

A worker counts its own attempts, retries and rate-limit events from zero each time its
process starts, and reports the running values on every heartbeat. Exposed as they are,
a restart would make a Prometheus counter go down. The gateway therefore keeps, per
worker name, totals that only grow: it adds each report's increase over the previous
report of the same incarnation, and treats a new incarnation id (a new process) as a
fresh start from zero, so whatever the new process has counted is added in full. The
restart itself is visible in ``llmc_worker_restarts_total``.

What a worker counted after its last heartbeat and before it died is lost: no report
carried it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CounterTotals"]


@dataclass
class CounterTotals:
    """Totals per counter name for one worker name, fed by ``observe`` on each report."""

    totals: dict[str, int] = field(default_factory=dict)
    _incarnation: str | None = None
    _last: dict[str, int] = field(default_factory=dict)

    def observe(self, incarnation: str | None, counters: Mapping[str, object]) -> None:
        """Fold one report from the worker process ``incarnation`` into the totals."""
        if incarnation != self._incarnation:
            self._incarnation = incarnation
            self._last = {}
        for name, value in counters.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                continue  # not a count: nothing sensible to add
            previous = self._last.get(name, 0)
            # A value below the last one from the same process is a reset we were not
            # told about: everything it shows now is new.
            increase = value - previous if value >= previous else value
            self.totals[name] = self.totals.get(name, 0) + increase
            self._last[name] = value

"""The soak's fault tally: every injected fault and every provider request, accounted for.

Three witnesses count independently: the emulator (the requests it served and the faults
it handed out, by path and by mode), the bench itself (its own quota requests, and how many
of them got a fault) and the faulted worker (its ``getHealth`` counters, see
``workers.resilience.call_counters``); the load generator adds the calls that failed.
The tally is a set of equations between them, each of which must hold exactly:

* requests: every request the emulator served was the bench's own, a first attempt, a
  retry or a model listing (discovery / reachability probe);
* faults on model listings: each went to the bench's own quota requests or failed one of
  the worker's listings;
* faults on calls: each failed exactly one call attempt (and no attempt failed otherwise);
* failed attempts: each was retried, ended its call, or its retry never went out;
* failed calls: each is a call the worker gave up on, refused or cancelled (no call
  failed anywhere else).

A fault that struck after the answer was complete, a retry hidden in the HTTP client, a
counter that misses a path or a worker restart would each break one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LISTING_PATH", "equation", "fault_tally"]

LISTING_PATH = "/v1/models"  # the free listing: the bench's quota checks and the worker's probes


def equation(name: str, left: tuple[str, int], right: Mapping[str, int]) -> dict[str, Any]:
    """``left == sum(right)``, with every term kept for the report."""
    return {"name": name, "left": {left[0]: left[1]}, "right": dict(right), "holds": left[1] == sum(right.values())}


def fault_tally(emulator: Mapping[str, Any], bench_requests: int, bench_faulted: int,
                counters: Mapping[str, int], failed_calls: int) -> dict[str, Any]:
    """The equations (see the module docstring) for one soak, and whether they all hold."""
    faults_by_path: Mapping[str, int] = emulator.get("faults_by_path", {})
    on_listings = int(faults_by_path.get(LISTING_PATH, 0))
    on_calls = sum(int(n) for path, n in faults_by_path.items() if path != LISTING_PATH)
    c = {name: int(counters.get(name, 0)) for name in (
        "attempts", "retries", "probes", "failed_probes", "failed_attempts", "gave_up", "retry_dropped",
        "refused", "cancelled")}
    equations = [
        equation("requests", ("emulator requests", int(emulator["requests"])),
                 {"bench's own": bench_requests, "first attempts": c["attempts"], "retries": c["retries"],
                  "model listings": c["probes"]}),
        equation("faults", ("faults handed out", int(emulator["faults"])),
                 {"on model listings": on_listings, "on calls": on_calls}),
        equation("faults on model listings", ("faults on " + LISTING_PATH, on_listings),
                 {"bench's own": bench_faulted, "failed listings": c["failed_probes"]}),
        equation("faults on calls", ("faults on call paths", on_calls),
                 {"failed attempts": c["failed_attempts"]}),
        equation("failed attempts", ("failed attempts", c["failed_attempts"]),
                 {"retried": c["retries"], "gave up": c["gave_up"], "retry dropped": c["retry_dropped"]}),
        equation("failed calls", ("failed calls", failed_calls),
                 {"gave up": c["gave_up"], "refused": c["refused"], "cancelled": c["cancelled"]}),
    ]
    return {"equations": equations, "faults_by_mode": dict(emulator.get("faults_by_mode", {})),
            "holds": all(e["holds"] for e in equations)}

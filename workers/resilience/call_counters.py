"""What a worker's calls did at the provider, counted where it happens.

Each count is taken at the point where the event is certain, so that the counters add up
against what the provider saw:

* ``attempts`` / ``retries``: first attempts and retries that were admitted (circuit and
  rate limiter passed) and so went to the provider. A retry the planner granted but
  which never went out (the circuit opened, the limiter refused, the call was cancelled
  while backing off) is not a retry the provider saw; it is ``retry_dropped``.
* ``failed_attempts``: attempts (first or retry) that ended in a taxonomy error.
  Each is followed by exactly one of: a retry sent, ``gave_up`` (the call ended with
  that error), or ``retry_dropped``. So ``failed_attempts == retries + gave_up +
  retry_dropped`` always holds.
* ``refused``: admissions refused by the circuit or the rate limiter (the call ends there
  with that error); ``cancelled``: calls cancelled by the worker (deadline) or the
  gateway (client gone) while at the provider or backing off.
* ``probes`` / ``failed_probes``: model listings (discovery, reachability probes,
  ``getHealth`` refreshes), which are provider requests too.

So the provider's request count is ``attempts + retries + probes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["CallCounters"]


@dataclass
class CallCounters:
    """Monotonic counts of one worker process; see the module docstring for each one."""

    attempts: int = 0
    retries: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    retry_dropped: int = 0
    refused: int = 0
    cancelled: int = 0
    probes: int = 0
    failed_probes: int = 0

    def sent(self, *, first: bool) -> None:
        """An attempt was admitted and goes to the provider."""
        if first:
            self.attempts += 1
        else:
            self.retries += 1

    def as_dict(self) -> dict[str, int]:
        """The counts by name, as heartbeats carry them."""
        return asdict(self)

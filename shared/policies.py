"""Tunable policies in providers.json and client-registry.json: retries, rate limits,
circuit breakers, stream guards, per-client limits and spending budgets.

Every field has a default that is safe for a developer machine, so a provider entry
without any of these blocks behaves sensibly. Each block is strict like the rest of the
configuration: an unknown key is an error, not silently ignored.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CircuitPolicy", "ClientBudget", "ClientLimits", "ProviderBudget", "RateLimits", "RetryPolicy",
           "StreamGuards", "StrictModel"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(StrictModel):
    """Retries in the worker, before the first byte reaches the caller."""

    max_attempts: Annotated[int, Field(ge=1, le=10, description="Total tries, the first included")] = 3
    base_delay_s: Annotated[float, Field(ge=0, le=60)] = 0.5
    max_delay_s: Annotated[float, Field(ge=0, le=300)] = 8.0
    # Provider hints (Retry-After) outside [0, max_hint_s] are clamped and logged.
    max_hint_s: Annotated[float, Field(ge=0, le=600)] = 60.0
    # The retry budget (Finagle-style): retries in any budget_ttl_s window may be at most
    # budget_min_retries_per_s * budget_ttl_s plus budget_ratio of the first attempts in
    # it. The floor keeps a quiet worker retrying; the ratio stops a flood's retry storm.
    budget_ratio: Annotated[float, Field(ge=0, le=1, description="Retries allowed per first attempt, "
                                         "on top of the floor")] = 0.2
    budget_ttl_s: Annotated[float, Field(ge=1, le=60, description="How long a deposit (and a retry "
                                         "spent) counts")] = 10.0
    budget_min_retries_per_s: Annotated[float, Field(ge=0, le=100, description="The floor: retries per "
                                                     "second allowed whatever the traffic")] = 1.0


class RateLimits(StrictModel):
    """Token buckets in the worker; tightened further by the provider's own headers."""

    requests_per_min: Annotated[int | None, Field(ge=1)] = None
    tokens_per_min: Annotated[int | None, Field(ge=1)] = None
    # How long a call may wait for capacity before failing with rate_limited.
    max_wait_s: Annotated[float, Field(ge=0, le=60)] = 2.0


class CircuitPolicy(StrictModel):
    """Open after consecutive failures; after the cooldown let one probe through.

    A provider that cannot be connected to at all is held open until a probe reaches it."""

    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 5
    cooldown_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    # This many failed connections in a row (calls or probes) make the provider unreachable:
    # the worker reports degraded, the circuit is held open, a probe runs every probe_interval_s.
    unreachable_after: Annotated[int, Field(ge=1, le=100, description="Consecutive failed connections "
                                            "that make the provider unreachable")] = 3
    probe_interval_s: Annotated[float, Field(ge=0.1, le=600, description="How often an unreachable (or "
                                             "suspect) provider is probed with a model listing")] = 5.0


class StreamGuards(StrictModel):
    """Checked on every chunk before anything is forwarded."""

    idle_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_chunk_bytes: Annotated[int, Field(ge=64, le=16 * 1024 * 1024)] = 256 * 1024
    max_total_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 8 * 1024 * 1024


class ClientLimits(StrictModel):
    """Per-client limits enforced by the gateway, whichever front end the client uses."""

    requests_per_min: Annotated[int | None, Field(ge=1)] = None
    max_concurrency: Annotated[int | None, Field(ge=1, le=1024)] = None


_USD = Annotated[float | None, Field(gt=0, le=1_000_000_000)]


class ClientBudget(StrictModel):
    """What one client may spend; each limit is optional (absent or null: no limit of that kind).

    Days and months are UTC: a day's budget resets at 00:00 UTC, a month's on the 1st at 00:00
    UTC. Spending comes from the usage ledger, so it survives gateway restarts (gateway.budgets).
    """

    usd_per_day: Annotated[_USD, Field(description="US dollars per UTC day (resets 00:00 UTC)")] = None
    usd_per_month: Annotated[_USD, Field(description="US dollars per UTC calendar month")] = None
    tokens_per_day: Annotated[int | None, Field(ge=1, description="input plus output tokens per UTC day")] = None


class ProviderBudget(StrictModel):
    """What all clients together may spend at one provider in a UTC calendar month."""

    usd_per_month: Annotated[_USD, Field(description="US dollars per UTC calendar month (resets on the 1st, "
                                         "00:00 UTC)")] = None

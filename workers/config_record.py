"""What a worker knows of its provider: its providers.json entry as plain, frozen records.

A worker lives as long as the stack, and pydantic, which validates providers.json, would
stay resident in it the whole time (~10 MB of a ~50 MB worker) for a check made once. So
the worker never imports it: ``workers.config_load`` has the full validation
(``shared.config``, unchanged, the same messages) run in a short-lived child process,
and builds these records from the entry the child validated, every default filled in.

Field names and meanings are those of ``shared.config.ProviderConfig`` and the
``shared.policies`` blocks; the worker reads nothing else. A field added there must be
added here too: tests/unit/workers/test_config_load_memory.py compares the two field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.chat_parts import Feature
from shared.kind_spec import KindOption
from shared.models import Capability

__all__ = [
    "CircuitRecord", "ModelRecord", "ProviderRecord", "RateLimitsRecord", "RetryRecord", "SecretRecord",
    "StreamGuardsRecord", "TimeoutsRecord",
]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """``shared.config.SecretRef``: where the key is, never the key."""

    env: str | None
    file: str | None


@dataclass(frozen=True, slots=True)
class TimeoutsRecord:
    """``shared.config.Timeouts``."""

    connect_s: float
    read_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """``shared.config.ModelConfig``: a model the operator configured."""

    id: str
    capabilities: tuple[Capability, ...]
    priority: int
    score: float | None
    features: tuple[Feature, ...] | None
    context_length: int | None
    max_output_tokens: int | None
    price: dict[str, Any] | None  # as validated; the gateway prices calls (gateway.pricing), the worker never reads it


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """``shared.policies.RetryPolicy``."""

    max_attempts: int
    base_delay_s: float
    max_delay_s: float
    max_hint_s: float
    budget_ratio: float
    budget_ttl_s: float
    budget_min_retries_per_s: float


@dataclass(frozen=True, slots=True)
class RateLimitsRecord:
    """``shared.policies.RateLimits``."""

    requests_per_min: int | None
    tokens_per_min: int | None
    max_wait_s: float


@dataclass(frozen=True, slots=True)
class CircuitRecord:
    """``shared.policies.CircuitPolicy``."""

    failure_threshold: int
    cooldown_s: float
    unreachable_after: int
    probe_interval_s: float


@dataclass(frozen=True, slots=True)
class StreamGuardsRecord:
    """``shared.policies.StreamGuards``."""

    idle_timeout_s: float
    max_chunk_bytes: int
    max_total_bytes: int


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """One provider's validated configuration (see ``shared.config.ProviderConfig`` for each field)."""

    kind: str
    base_url: str
    secret: SecretRecord | None
    models: tuple[ModelRecord, ...]
    timeouts: TimeoutsRecord
    max_concurrency: int
    # The kind's own settings (``KindSpec.options``), validated, every default filled in.
    options: dict[str, str | int | float | bool]
    discover_models: bool
    discovery_interval_s: float
    priority: int
    retry: RetryRecord
    rate_limits: RateLimitsRecord
    circuit: CircuitRecord
    stream_guards: StreamGuardsRecord
    # The gateway's monthly budget for this provider (gateway.budgets); the worker does not use it.
    budget: dict[str, float | None] | None = None

    def option(self, declared: KindOption) -> str | int | float | bool:
        """The value of one of this kind's declared options (its default if the entry had none)."""
        return self.options.get(declared.name, declared.default)

    @classmethod
    def from_validated(cls, entry: dict[str, Any]) -> ProviderRecord:
        """The record of a ``ProviderConfig.model_dump(mode="json")``; TypeError on a key this class lacks."""
        secret = entry["secret"]
        models = tuple(ModelRecord(**{**m, "capabilities": tuple(m["capabilities"]),
                                      "features": tuple(m["features"]) if m["features"] is not None else None})
                       for m in entry["models"])
        return cls(**{
            **entry,
            "secret": SecretRecord(**secret) if secret is not None else None,
            "models": models,
            "timeouts": TimeoutsRecord(**entry["timeouts"]),
            "retry": RetryRecord(**entry["retry"]),
            "rate_limits": RateLimitsRecord(**entry["rate_limits"]),
            "circuit": CircuitRecord(**entry["circuit"]),
            "stream_guards": StreamGuardsRecord(**entry["stream_guards"]),
        })

"""What a call costs: each model's price, and one function from a call's usage to US dollars.

Prices come from each model's ``price`` in providers.json (``shared.config.ModelPrice``, USD per
million tokens, with the day they were checked). A model of a local kind (``KindSpec.local``:
LM Studio, Ollama) without one costs nothing; any other model without one is *unpriced*: its
calls' cost is unknown (None, never a guessed 0), it is named once in the gateway log
(``price_unknown``) and listed in ``getHealth`` (``unpriced_models``).

The cost is computed from the usage every adapter reports in one shape (``shared.models.Usage``):
``input_tokens`` includes the cached ones and ``output_tokens`` the reasoning ones, so

    cost = (input - cached) x input rate + cached x cached rate
         + (output - reasoning) x output rate + reasoning x reasoning rate     (per million)

and no token is billed twice. How each kind fills that shape (its adapter's ``usage``):

* openai, lmstudio: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``. LM Studio ignores
  ``include_usage`` on streams, so a streamed LM Studio call may report nothing (it is free anyway).
* anthropic: reports cache reads and writes apart from ``input_tokens``; the adapter adds them
  back (input = fresh + cache reads + cache writes; cached = cache reads). The gateway never
  marks ``cache_control``, so Anthropic writes no cache for its calls; a write would be billed at
  the input rate here (Anthropic bills 1.25x). Thinking tokens are part of ``output_tokens``.
* gemini: ``promptTokenCount`` (plus tool-use prompt tokens) includes
  ``cachedContentTokenCount``; output is ``candidatesTokenCount`` plus ``thoughtsTokenCount``,
  which Google bills as output.
* ollama: ``prompt_eval_count`` and ``eval_count``; no cache and no reasoning count (local: free).

A price's ``long_context`` rates replace the base ones for every token of a call whose input
(cached included) is above its threshold, as Google bills Gemini 2.5 Pro over 200k tokens.
The arithmetic is exact: each rate as written (0.15, not its binary neighbour) is held as a
whole number of 1e-12 USD per million tokens, the sum is a whole number, and one division
gives the float nearest the exact cost (Python divides integers correctly rounded). A rate
finer than 1e-12 USD per million tokens is cut to that step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from shared.config import LongContextPrice, ModelPrice, ProvidersFile
from shared.logs import log_event
from shared.models import Usage
from workers.providers.registry import KINDS  # declarations only (see test_layering)

__all__ = ["FREE", "PriceBook", "Rates", "Tariff", "call_cost"]

log = logging.getLogger("gateway.pricing")

# Rates are held as whole numbers of 1e-12 USD per million tokens; a cost sum divides by this.
_RATE_STEP = 10**12
_DIVISOR = _RATE_STEP * 1_000_000
# Distinct unpriced models named in the log, at most; beyond, one line says the rest go unnamed.
_MAX_FLAGGED = 256


def _steps(rate: float | None, fallback: int) -> int:
    """The rate as written in the config (``repr`` of the float: 0.15, not its binary neighbour), in steps."""
    return fallback if rate is None else int(Decimal(repr(rate)).scaleb(12))


@dataclass(frozen=True, slots=True)
class Rates:
    """Each kind of token's rate, in whole steps of 1e-12 USD per million tokens."""

    input: int
    cached_input: int
    output: int
    reasoning: int

    @classmethod
    def of(cls, price: ModelPrice | LongContextPrice) -> Rates:
        """Null cached and reasoning rates fall back to input and output."""
        input_rate, output_rate = _steps(price.input, 0), _steps(price.output, 0)
        return cls(input_rate, _steps(price.cached_input, input_rate), output_rate,
                   _steps(price.reasoning, output_rate))


@dataclass(frozen=True, slots=True)
class Tariff:
    """A model's rates as the cost function uses them; ``source``: ``config`` or ``local``."""

    base: Rates
    long_above: int | None = None
    long: Rates | None = None
    source: str = "config"

    @classmethod
    def of(cls, price: ModelPrice) -> Tariff:
        long = price.long_context
        return cls(Rates.of(price), long.above_input_tokens if long else None, Rates.of(long) if long else None)

    @property
    def free(self) -> bool:
        rates = [self.base] + ([self.long] if self.long else [])
        return all(r.input == r.cached_input == r.output == r.reasoning == 0 for r in rates)


# A local kind's model without a price of its own.
FREE = Tariff(Rates(0, 0, 0, 0), source="local")


def call_cost(usage: Usage, tariff: Tariff) -> float | None:
    """The call's cost in USD, or None when the provider reported no token counts (0 if free)."""
    if usage.input_tokens is None and usage.output_tokens is None:
        return 0.0 if tariff.free else None
    input_tokens = max(usage.input_tokens or 0, 0)
    output_tokens = max(usage.output_tokens or 0, 0)
    cached = min(max(usage.cached_input_tokens or 0, 0), input_tokens)
    reasoning = min(max(usage.reasoning_tokens or 0, 0), output_tokens)
    rates = tariff.base
    if tariff.long is not None and tariff.long_above is not None and input_tokens > tariff.long_above:
        rates = tariff.long
    total = ((input_tokens - cached) * rates.input + cached * rates.cached_input
             + (output_tokens - reasoning) * rates.output + reasoning * rates.reasoning)
    return total / _DIVISOR


class PriceBook:
    """The tariff of every configured model, read once from providers.json, and the unpriced ones flagged."""

    def __init__(self, providers: ProvidersFile) -> None:
        self._tariffs = {(name, model.id): Tariff.of(model.price)
                         for name, config in providers.providers.items() for model in config.models
                         if model.price is not None}
        self._local = frozenset(name for name, config in providers.providers.items() if KINDS[config.kind].local)
        self._flagged: set[tuple[str, str]] = set()

    def tariff(self, provider: str, model: str) -> Tariff | None:
        """The model's own price, else free on a local kind, else None (unpriced)."""
        found = self._tariffs.get((provider, model))
        if found is not None:
            return found
        return FREE if provider in self._local else None

    def cost(self, provider: str, model: str, usage: Usage) -> float | None:
        """The call's cost; None when the model is unpriced (named once in the log) or nothing was reported."""
        tariff = self.tariff(provider, model)
        if tariff is None:
            self._flag(provider, model)
            return None
        return call_cost(usage, tariff)

    def unpriced(self, models: Iterable[tuple[str, str]]) -> list[str]:
        """``provider/model`` for each of ``models`` without a price, sorted, each once."""
        return sorted({f"{p}/{m}" for p, m in models if self.tariff(p, m) is None})

    def _flag(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key in self._flagged or len(self._flagged) > _MAX_FLAGGED:
            return
        self._flagged.add(key)
        if len(self._flagged) > _MAX_FLAGGED:
            log_event(log, "price_unknown", level=logging.WARNING, provider=None, model=None,
                      fix=f"more than {_MAX_FLAGGED} models have no price; further ones are not named here "
                          "(getHealth lists the configured and discovered ones)")
            return
        log_event(log, "price_unknown", level=logging.WARNING, provider=provider, model=model,
                  fix="add a price to this model in providers.json (README: Prices); until then its "
                      "calls' cost is recorded as unknown")

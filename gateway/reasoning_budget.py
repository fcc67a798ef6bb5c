"""A call's thinking budget, fitted to what the chosen model takes.

``reasoning.budget_tokens`` means "think up to about this many tokens" on every provider,
but each provider bounds it per model (``KindSpec.budget_ranges``: Anthropic at least 1024
and below max_tokens, Gemini 2.5 Pro 128-32768, Flash up to 24576, Flash-Lite 512-24576),
and a budget outside the range is a 400 from the provider. The gateway moves such a budget
to the nearest one the model takes, before the request goes out, and the result says so
(``adjusted``: what was asked, what was sent, and the model's range), so a caller never
has to know each model's range and never has it changed silently. The model's output
limit (``max_output_tokens`` from providers.json, else from discovery), less the kind's
headroom for the answer, caps the range where the budget counts against max_tokens.

A model with adaptive thinking (``KindSpec.adaptive_thinking``: Claude Sonnet 4.6 and later)
takes an effort level, not a budget: the adapter sends the call's effort, so a budget the
caller gave is not honoured as such, and the note says which effort stands in for it. A model
that steers thinking by a named level (``KindSpec.thinking_levels``: Gemini 3) is the same
case: the adapter sends the level for the call's effort, and the note names that level.
"""

from __future__ import annotations

from dataclasses import replace

from shared.chat_parts import Reasoning
from shared.kind_spec import KindSpec

__all__ = ["budget_bounds", "fit_reasoning"]


def budget_bounds(kind: KindSpec, model: str, max_output: int | None) -> tuple[int, int | None] | None:
    """(lowest, highest or None) thinking budget ``model`` takes; None when nothing is known."""
    known = kind.budget_range(model)
    if known is None:
        return None
    highest = known.maximum
    if kind.budget_headroom and max_output is not None:
        ceiling = max(known.minimum, max_output - kind.budget_headroom)
        highest = ceiling if highest is None else min(highest, ceiling)
    return known.minimum, highest


def fit_reasoning(reasoning: Reasoning | None, kind: KindSpec, model: str,
                  max_output: int | None) -> tuple[Reasoning | None, str | None]:
    """``reasoning`` with its budget moved into ``model``'s range, and a note saying so
    (None when the budget fits, or the model's range is not known)."""
    if reasoning is None:
        return None, None
    if kind.thinks_adaptively(model):
        if not reasoning.budget_given:
            return reasoning, None
        return reasoning, (f"reasoning.budget_tokens {reasoning.budget_tokens} -> effort {reasoning.effort} "
                           f"({model} thinks adaptively: it takes an effort, not a budget)")
    level = kind.thinking_level(model, reasoning.effort)
    if level is not None:
        if not reasoning.budget_given:
            return reasoning, None
        return reasoning, (f"reasoning.budget_tokens {reasoning.budget_tokens} -> thinking level {level} "
                           f"({model} takes a thinking level, not a budget)")
    bounds = budget_bounds(kind, model, max_output)
    if bounds is None:
        return reasoning, None
    lowest, highest = bounds
    asked = reasoning.budget_tokens
    used = max(lowest, asked if highest is None else min(asked, highest))
    if used == asked:
        return reasoning, None
    span = f"{lowest} to {highest}" if highest is not None else f"at least {lowest}"
    note = f"reasoning.budget_tokens {asked} -> {used} ({model} takes {span})"
    return replace(reasoning, budget_tokens=used), note

"""A thinking budget fitted to each model's documented range, with a note when it moved."""

from __future__ import annotations

import pytest

from gateway.reasoning_budget import budget_bounds, fit_reasoning
from shared.chat_parts import Reasoning
from workers.providers.registry import KINDS


@pytest.mark.parametrize(("kind", "model", "asked", "used", "span"), [
    ("anthropic", "claude-haiku-4-5", 100, 1024, "at least 1024"),
    ("gemini", "gemini-2.5-pro", 64, 128, "128 to 32768"),
    ("gemini", "gemini-2.5-pro", 40000, 32768, "128 to 32768"),
    ("gemini", "gemini-2.5-flash", 30000, 24576, "0 to 24576"),
    ("gemini", "gemini-2.5-flash-lite", 100, 512, "512 to 24576"),  # the longer prefix wins over -flash
    ("gemini", "gemini-2.5-flash-lite-preview-06-17", 30000, 24576, "512 to 24576"),
])
def test_a_budget_outside_the_models_range_moves_to_the_nearest_it_takes(
        kind: str, model: str, asked: int, used: int, span: str) -> None:
    fitted, note = fit_reasoning(Reasoning("low", asked, True), KINDS[kind], model, None)
    assert fitted == Reasoning("low", used, True)  # effort and include_thoughts as they were
    assert note == f"reasoning.budget_tokens {asked} -> {used} ({model} takes {span})"


@pytest.mark.parametrize(("kind", "model", "budget"), [
    ("anthropic", "claude-sonnet-4-5", 1024),
    ("anthropic", "claude-sonnet-4-5", 100_000),  # no output limit known: only the floor applies
    ("gemini", "gemini-2.5-pro", 32768),
    ("gemini", "gemini-2.5-flash", 1),
    ("gemini", "gemini-3-pro-preview", 5),  # a family without a documented budget range: as asked
    ("openai", "o4-mini", 5),  # a kind that sends effort only
    ("ollama", "qwen3", 5),
])
def test_a_budget_the_model_takes_or_a_model_without_a_range_is_sent_as_asked(
        kind: str, model: str, budget: int) -> None:
    reasoning = Reasoning("high", budget)
    assert fit_reasoning(reasoning, KINDS[kind], model, None) == (reasoning, None)


def test_the_output_limit_less_the_answers_headroom_caps_an_anthropic_budget() -> None:
    assert budget_bounds(KINDS["anthropic"], "claude-haiku-4-5", 64000) == (1024, 62976)
    fitted, note = fit_reasoning(Reasoning("high", 16384), KINDS["anthropic"], "claude-3-5-haiku", 8192)
    assert fitted is not None and fitted.budget_tokens == 7168
    assert note == "reasoning.budget_tokens 16384 -> 7168 (claude-3-5-haiku takes 1024 to 7168)"
    # Gemini's budget does not count against an answer headroom: its own range only.
    assert budget_bounds(KINDS["gemini"], "gemini-2.5-flash", 8192) == (0, 24576)


def test_no_reasoning_stays_none() -> None:
    assert fit_reasoning(None, KINDS["anthropic"], "claude-haiku-4-5", None) == (None, None)

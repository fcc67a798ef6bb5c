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


def test_a_model_with_adaptive_thinking_keeps_the_effort_and_only_a_given_budget_is_noted() -> None:
    anthropic = KINDS["anthropic"]
    assert anthropic.thinks_adaptively("claude-sonnet-4-6") and not anthropic.thinks_adaptively("claude-haiku-4-5")
    from_effort = Reasoning("low", 1024)  # the budget was filled in from the effort: nothing to say
    assert fit_reasoning(from_effort, anthropic, "claude-sonnet-4-6", 128_000) == (from_effort, None)
    given = Reasoning("medium", 5000, budget_given=True)  # not clamped: no budget is sent
    fitted, note = fit_reasoning(given, anthropic, "claude-sonnet-4-6", 128_000)
    assert fitted == given
    assert note == ("reasoning.budget_tokens 5000 -> effort medium "
                    "(claude-sonnet-4-6 thinks adaptively: it takes an effort, not a budget)")
    # A budgeted model still has its budget fitted, whether given or filled in.
    assert fit_reasoning(Reasoning("low", 100, budget_given=True), anthropic, "claude-haiku-4-5", None)[1] == (
        "reasoning.budget_tokens 100 -> 1024 (claude-haiku-4-5 takes at least 1024)")


@pytest.mark.parametrize(("model", "effort", "level"), [
    ("gemini-3.5-flash-lite", "low", "low"),
    ("gemini-3.8-flash", "medium", "medium"),
    ("gemini-3.8-flash", "high", "high"),
    ("gemini-3-pro-preview", "medium", "high"),  # takes low and high only: the nearest above
    ("gemini-2.5-flash", "medium", None),  # a budgeted model: no level
    ("gemini-embedding-001", "low", None),
])
def test_a_gemini_3_model_is_sent_the_thinking_level_for_the_effort(model: str, effort: str,
                                                                    level: str | None) -> None:
    assert KINDS["gemini"].thinking_level(model, effort) == level


def test_a_model_that_thinks_by_level_keeps_the_effort_and_only_a_given_budget_is_noted() -> None:
    gemini = KINDS["gemini"]
    from_effort = Reasoning("low", 1024)
    assert fit_reasoning(from_effort, gemini, "gemini-3.8-flash", 65_536) == (from_effort, None)
    given = Reasoning("medium", 50_000, budget_given=True)  # not clamped: no budget is sent
    fitted, note = fit_reasoning(given, gemini, "gemini-3.8-flash", 65_536)
    assert fitted == given
    assert note == ("reasoning.budget_tokens 50000 -> thinking level medium "
                    "(gemini-3.8-flash takes a thinking level, not a budget)")
    # the level named is the one sent, not the effort, where the model lacks that level
    assert fit_reasoning(given, gemini, "gemini-3-pro-preview", None)[1] == (
        "reasoning.budget_tokens 50000 -> thinking level high (gemini-3-pro-preview takes a thinking level, "
        "not a budget)")

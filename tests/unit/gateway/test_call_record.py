"""The call record's one line and one count, and worker counter totals across restarts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.broker import WorkerBroker
from gateway.call_record import CallAccounting, CallRecord
from gateway.compose import error_result
from gateway.metrics import GatewayMetrics
from gateway.worker_counters import CounterTotals
from shared import errors
from shared.models import Usage


def test_totals_add_increases_and_restart_from_zero_on_a_new_incarnation() -> None:
    totals = CounterTotals()
    totals.observe("a", {"attempts": 3, "retries": 1})
    totals.observe("a", {"attempts": 5, "retries": 1})
    totals.observe("b", {"attempts": 2, "retries": 0})  # the worker restarted and counted 2 since
    totals.observe("b", {"attempts": 2})  # a report without a counter leaves its total alone
    assert totals.totals == {"attempts": 7, "retries": 1}


def test_totals_treat_a_drop_within_one_incarnation_as_a_reset_and_skip_non_counts() -> None:
    totals = CounterTotals()
    totals.observe("a", {"attempts": 4, "odd": "x", "flag": True, "negative": -1})
    totals.observe("a", {"attempts": 1})
    assert totals.totals == {"attempts": 5}


def _accounting() -> tuple[CallAccounting, GatewayMetrics]:
    broker = WorkerBroker("ipc:///tmp/unused-llmc-test.sock", link_key=bytes(32), workers=["openai"])
    metrics = GatewayMetrics(broker, lambda: 0)

    def bound(provider: str | None, model: str | None) -> tuple[str, str]:
        # As GatewayService.metric_labels with one provider configured, offering one model.
        if provider != "openai":
            return "", ""
        if not model:
            return provider, ""
        return provider, model if model == "gpt-4o-mini" else "other"

    return CallAccounting(metrics, ["chat"], bound), metrics


def test_a_record_is_counted_once_even_if_closed_twice(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> str:
        accounting, metrics = _accounting()
        record = CallRecord(tool="chat", trace_id="t" * 32, client="demo")
        record.routed("openai", "gpt-4o-mini")
        accounting.close(record, None)
        accounting.close(record, error_result(errors.Timeout("late")))
        return metrics.exposition().decode()

    with caplog.at_level(logging.INFO, logger="gateway.mcp"):
        text = asyncio.run(scenario())
    lines = [r for r in caplog.records if r.getMessage() == "tool_call"]
    assert len(lines) == 1 and lines[0].__dict__["outcome"] == "cancelled"
    assert 'llmc_calls_total{model="gpt-4o-mini",outcome="cancelled",provider="openai",tool="chat"} 1.0' in text
    assert "timeout" not in text


def test_labels_never_carry_free_text() -> None:
    async def scenario() -> str:
        accounting, metrics = _accounting()
        record = CallRecord(tool="x" * 200, trace_id="t" * 32)
        accounting.close(record, error_result(errors.NotFound("no such tool")))
        unchecked = CallRecord(tool="chat", trace_id="t" * 32)
        unchecked.routed("openai", "made-up-model")
        accounting.close(unchecked, error_result(errors.ProviderError("boom", provider="openai")))
        return metrics.exposition().decode()

    text = asyncio.run(scenario())
    assert 'llmc_calls_total{model="",outcome="not_found",provider="",tool="unknown"} 1.0' in text
    assert 'llmc_calls_total{model="other",outcome="provider_error",provider="openai",tool="chat"} 1.0' in text
    assert "made-up-model" not in text and "xxxx" not in text


def test_usage_and_cost_go_into_the_line_and_the_token_and_cost_counters(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> str:
        accounting, metrics = _accounting()
        record = CallRecord(tool="chat", trace_id="t" * 32, client="demo")
        record.routed("openai", "gpt-4o-mini")
        record.used(Usage(1200, 300, 1000, 100), 0.000335)
        accounting.close(record, None)
        unpriced = CallRecord(tool="chat", trace_id="u" * 32, client="demo")
        unpriced.routed("openai", "made-up-model")
        unpriced.used(Usage(7, 3), None)
        accounting.close(unpriced, error_result(errors.StreamInterrupted("cut", provider="openai")))
        return metrics.exposition().decode()

    with caplog.at_level(logging.INFO, logger="gateway.mcp"):
        text = asyncio.run(scenario())
    first, second = (r.__dict__ for r in caplog.records if r.getMessage() == "tool_call")
    assert (first["input_tokens"], first["cached_input_tokens"], first["output_tokens"], first["reasoning_tokens"],
            first["cost_usd"]) == (1200, 1000, 300, 100, 0.000335)
    assert (second["input_tokens"], second["output_tokens"], second["cached_input_tokens"], second["cost_usd"]) == (
        7, 3, None, None)
    series = 'client="demo",kind="{}",model="gpt-4o-mini",provider="openai"'
    for kind, count in (("input", 1200), ("cached_input", 1000), ("output", 300), ("reasoning", 100)):
        assert f"llmc_tokens_total{{{series.format(kind)}}} {float(count)}" in text
    assert 'llmc_cost_usd_total{client="demo",model="gpt-4o-mini",provider="openai"} 0.000335' in text
    # The unpriced call's tokens count under the bounded model label; no cost is made up for it.
    assert 'llmc_tokens_total{client="demo",kind="input",model="other",provider="openai"} 7.0' in text
    assert 'llmc_cost_usd_total{client="demo",model="other"' not in text
    assert 'kind="cached_input",model="other"' not in text  # not reported: not counted as 0


def test_a_call_no_provider_answered_has_no_usage_fields_or_token_counts(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> str:
        accounting, metrics = _accounting()
        record = CallRecord(tool="chat", trace_id="t" * 32, client="demo")
        record.routed("openai", "gpt-4o-mini")
        accounting.close(record, error_result(errors.Unavailable("down", provider="openai")))
        return metrics.exposition().decode()

    with caplog.at_level(logging.INFO, logger="gateway.mcp"):
        text = asyncio.run(scenario())
    line = next(r.__dict__ for r in caplog.records if r.getMessage() == "tool_call")
    assert line["input_tokens"] is None and line["cost_usd"] is None
    assert "llmc_tokens_total{" not in text and "llmc_cost_usd_total{" not in text

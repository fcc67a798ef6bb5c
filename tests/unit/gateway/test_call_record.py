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

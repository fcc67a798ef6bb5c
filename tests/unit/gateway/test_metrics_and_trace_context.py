"""Trace context handling and the Prometheus exposition (span export: tests/unit/shared/test_otel_span_export.py)."""

from __future__ import annotations

import asyncio

from gateway.broker import WorkerBroker
from gateway.metrics import GatewayMetrics
from gateway.tracing import incoming_trace
from shared.messages import Ready

CLIENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_traceparent_from_header_keeps_the_trace_and_mints_a_span() -> None:
    trace = incoming_trace({"traceparent": CLIENT}, None)
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace.parent_span_id == "b7ad6b7169203331"
    assert trace.span_id != trace.parent_span_id and len(trace.span_id) == 16
    assert trace.traceparent == f"00-{trace.trace_id}-{trace.span_id}-01"


def test_traceparent_from_meta_when_no_header() -> None:
    assert incoming_trace({}, {"traceparent": CLIENT}).trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_meta_traceparent_wins_over_the_header_as_in_the_sdks_span() -> None:
    other = "00-1111111111111111111111111111111a-2222222222222222-01"
    trace = incoming_trace({"traceparent": other}, {"traceparent": CLIENT})
    assert (trace.trace_id, trace.parent_span_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    # An invalid _meta value falls back to the header.
    assert incoming_trace({"traceparent": other}, {"traceparent": "junk"}).trace_id == other.split("-")[1]


def test_invalid_or_zero_traceparent_starts_a_new_trace() -> None:
    for bad in ("garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "01-abc-def-01", CLIENT + "x"):
        trace = incoming_trace({"traceparent": bad}, None)
        assert trace.parent_span_id is None and len(trace.trace_id) == 32 and trace.trace_id != "0" * 32


def test_exposition_shows_calls_and_worker_state() -> None:
    async def scenario() -> str:
        broker = WorkerBroker("ipc:///tmp/unused-llmc-test.sock", link_key=bytes(32), workers=["openai"])
        state = broker.worker("openai")
        state.apply_ready(Ready.from_wire({"status": "ready", "incarnation": "a", "circuit": {"state": "open"},
                                           "counters": {"retries": 4, "attempts": 10}}), broker.now())
        metrics = GatewayMetrics(broker, lambda: 3)
        metrics.calls.labels("chat", "openai", "gpt-4o-mini", "ok").inc()
        metrics.latency.labels("chat", "openai", "gpt-4o-mini", "ok").observe(0.02)
        return metrics.exposition().decode()

    text = asyncio.run(scenario())
    assert 'llmc_calls_total{model="gpt-4o-mini",outcome="ok",provider="openai",tool="chat"} 1.0' in text
    assert 'llmc_worker_up{provider="openai"} 1.0' in text
    assert 'llmc_circuit_state{provider="openai"} 2.0' in text
    assert 'llmc_provider_retries_total{provider="openai"} 4.0' in text
    assert "llmc_gateway_inflight 3.0" in text
    assert ('llmc_call_latency_seconds_bucket{le="0.025",model="gpt-4o-mini",outcome="ok",provider="openai",'
            'tool="chat"} 1.0') in text

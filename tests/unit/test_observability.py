"""Trace context handling, span parenting, and the Prometheus exposition."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from gateway.broker import WorkerBroker
from gateway.metrics import GatewayMetrics
from gateway.tracing import incoming_trace

CLIENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_traceparent_from_header_keeps_the_trace_and_mints_a_span() -> None:
    trace = incoming_trace({"traceparent": CLIENT}, None)
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace.parent_span_id == "b7ad6b7169203331"
    assert trace.span_id != trace.parent_span_id and len(trace.span_id) == 16
    assert trace.traceparent == f"00-{trace.trace_id}-{trace.span_id}-01"


def test_traceparent_from_meta_when_no_header() -> None:
    assert incoming_trace({}, {"traceparent": CLIENT}).trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_invalid_or_zero_traceparent_starts_a_new_trace() -> None:
    for bad in ("garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "01-abc-def-01", CLIENT + "x"):
        trace = incoming_trace({"traceparent": bad}, None)
        assert trace.parent_span_id is None and len(trace.trace_id) == 32 and trace.trace_id != "0" * 32


def test_span_is_parented_on_the_clients_span_when_a_provider_is_set() -> None:
    # In a child process: a global tracer provider cannot be unset, and left in this
    # process it would make the MCP SDK client inject its own spans into later tests.
    code = f"""
from opentelemetry import trace as otel
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from gateway.tracing import incoming_trace, span
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
otel.set_tracer_provider(provider)
trace = incoming_trace({{"traceparent": "{CLIENT}"}}, None)
with span(trace, "llm-caller chat", tool="chat"):
    pass
(finished,) = [s for s in exporter.get_finished_spans() if s.name == "llm-caller chat"]
print(format(finished.context.trace_id, "032x"), format(finished.parent.span_id, "016x"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"]


def test_console_exporter_is_enabled_only_on_request() -> None:
    code = ("from gateway.tracing import configure_exporter, incoming_trace, span\n"
            "import sys\n"
            "print(configure_exporter({}))\n"
            "print(configure_exporter({'LLMC_OTEL_EXPORTER': 'console'}))\n"
            "with span(incoming_trace({}, None), 'probe-span'): pass\n"
            "from opentelemetry import trace; trace.get_tracer_provider().force_flush()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.splitlines()[:2] == ["False", "True"] and "probe-span" in out


def test_exposition_shows_calls_and_worker_state() -> None:
    async def scenario() -> str:
        broker = WorkerBroker("ipc:///tmp/unused-llmc-test.sock", link_key=bytes(32), workers=["openai"])
        state = broker.worker("openai")
        state.apply_ready({"status": "ready", "incarnation": "a", "circuit": {"state": "open"},
                           "counters": {"retries": 4, "attempts": 10}}, broker.now())
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

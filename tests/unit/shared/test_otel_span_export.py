"""Span export: configured per process, off by default and then free of OpenTelemetry code.

Anything that sets a global tracer provider runs in a child process: a provider cannot
be unset, and left in this process it would make the MCP SDK client inject its spans
into later tests. The end-to-end chain is tests/integration/test_tracing.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import orjson
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cli.stack import REPO_ROOT, scrubbed_environment
from shared import otel
from shared.messages import Op, WorkRequest
from shared.settings import Settings
from workers.tracing import provider_call_span

GATEWAY_HOP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def test_worker_span_continues_the_gateway_hop_and_is_the_providers_parent() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = otel.Tracing(provider.get_tracer("test"))
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "private words"}],
               "traceparent": GATEWAY_HOP}
    with provider_call_span(tracing, "openai", "openai", "req-1", WorkRequest(Op.CHAT_STREAM, request)):
        sent = request["traceparent"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini" and span.kind.name == "CLIENT"
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert sent == f"00-0af7651916cd43dd8448eb211c80319c-{span.context.span_id:016x}-01"
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "llmc.provider": "openai", "llmc.op": "chat_stream", "llmc.request_id": "req-1"}


def test_worker_span_records_a_failure_by_type_only() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = otel.Tracing(provider.get_tracer("test"))
    request = {"model": "m", "inputs": ["x"], "traceparent": "not a traceparent"}
    try:
        with provider_call_span(tracing, "lab", "lmstudio", "req-2", WorkRequest(Op.EMBED, request)):
            raise ValueError("a message quoting the prompt")
    except ValueError:
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is None  # an invalid traceparent starts a new trace instead of failing the call
    assert span.name == "embeddings m" and span.status.status_code.name == "ERROR"
    assert span.attributes is not None and span.attributes["error.type"] == "ValueError"
    assert not span.events and "prompt" not in str(span.status.description)


def test_a_cancelled_call_ends_its_span_as_cancelled() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = otel.Tracing(provider.get_tracer("test"))
    request = {"model": "m", "messages": [], "traceparent": GATEWAY_HOP}
    with contextlib.suppress(asyncio.CancelledError), \
            provider_call_span(tracing, "openai", "openai", "req-3", WorkRequest(Op.CHAT, request)):
        raise asyncio.CancelledError
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["error.type"] == "cancelled"


def test_tracing_off_loads_no_opentelemetry_in_a_worker() -> None:
    code = """
import sys
import workers.__main__, workers.runtime, workers.tracing
from shared import otel
assert otel.configure("worker:openai", {}) is False and otel.active is None
assert otel.configure("worker:openai", {"OTEL_TRACES_EXPORTER": "none"}) is False
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    out = _child(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_tracing_off_adds_nothing_to_the_gateways_mcp_server() -> None:
    code = """
import sys
from gateway.mcp_server import build_mcp_server
from gateway.tracing import call_trace, configure_exporter
assert configure_exporter({}) is False
from types import SimpleNamespace
server = build_mcp_server(SimpleNamespace(metrics=None, metric_labels=None, ledger=None), lambda _: None)
print([type(m).__name__ for m in server.middleware])
print(call_trace({}, {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}).trace_id)
print(sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")))
"""
    out = _child(code)
    assert out.returncode == 0, out.stderr[-2000:]
    # Only the SDK's own middleware; the trace id still continues the client's; no exporter SDK loaded.
    assert out.stdout.split("\n")[:3] == ["['OpenTelemetryMiddleware']", "0af7651916cd43dd8448eb211c80319c", "[]"]


def test_console_export_writes_each_span_as_a_json_log_line() -> None:
    code = """
import logging
from opentelemetry import trace
from shared import otel
from shared.logs import configure_logging
configure_logging("worker:openai")
assert otel.configure("worker:openai", {"LLMC_OTEL_EXPORTER": "console"}) is True
with otel.active.span("probe-span", otel.active.kinds.INTERNAL, {"llmc.op": "chat"}):
    pass
trace.get_tracer_provider().force_flush()
logging.shutdown()
"""
    out = _child(code)
    assert out.returncode == 0, out.stderr[-2000:]
    records = [orjson.loads(line) for line in out.stderr.splitlines()]  # every line is one JSON object
    (span,) = [r for r in records if r["event"] == "span"]
    assert span["span"] == "probe-span" and span["process"] == "worker:openai"
    assert span["attributes"] == {"llmc.op": "chat"} and len(span["trace_id"]) == 32 and span["parent_span_id"] is None
    assert any(r["event"] == "tracing_enabled" and r["service"] == "llm-caller-worker-openai" for r in records)


def test_unknown_exporter_or_grpc_protocol_is_refused_with_one_line() -> None:
    code = """
import logging
from shared import otel
from shared.logs import configure_logging
configure_logging("gateway")
print(otel.configure("gateway", {"LLMC_OTEL_EXPORTER": "jaeger"}))
print(otel.configure("gateway", {"LLMC_OTEL_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}))
logging.shutdown()
"""
    out = _child(code)
    assert out.stdout.split() == ["False", "False"]
    problems = [orjson.loads(line) for line in out.stderr.splitlines()]
    assert [p["event"] for p in problems] == ["tracing_unavailable", "tracing_unavailable"]
    assert "console or otlp" in problems[0]["fix"] and "http/protobuf" in problems[1]["fix"]


def test_the_launcher_passes_span_export_settings_to_every_process() -> None:
    settings = Settings.from_env({"LLMC_RUN_DIR": "/tmp/llmc-otel-unit"})
    source = {
        "LLMC_OTEL_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-collector=abc", "OTEL_SERVICE_NAME": "llmc",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod", "OPENAI_API_KEY": "sk-never",
    }
    env = scrubbed_environment(settings, source)
    assert {k: env[k] for k in source if k in env} == {k: v for k, v in source.items() if k != "OPENAI_API_KEY"}

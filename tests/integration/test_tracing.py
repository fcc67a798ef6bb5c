"""OpenTelemetry spans through the real stack: one trace per call, from the client to the provider.

The stack exports OTLP over HTTP/protobuf to a small receiver in this test, configured
only with the standard OTEL_EXPORTER_OTLP_* variables handed to the launcher (so they
must pass its scrubbed environment to the gateway and every worker). Each test checks
the parent links span by span, the ``traceparent`` the provider emulator received, and
the trace id in the gateway's ``tool_call`` line, and prints the tree it collected.
"""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    status: str
    service: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: decodes each export request with opentelemetry-proto."""

    spans: list[Span] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                ok = self.path == "/v1/traces" and receiver.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 400)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def take(self, body: bytes) -> bool:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(Span(
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(), parent_id=span.parent_span_id.hex(),
                        name=span.name, kind=_KINDS.get(span.kind, str(span.kind)),
                        status=("unset", "ok", "error")[span.status.code],
                        service=str(resource.get("service.name")),
                        attributes={a.key: _value(a.value) for a in span.attributes}, resource=resource,
                    ))
        with self.lock:
            self.bodies.append(body)
            self.spans.extend(found)
        return True

    def trace(self, trace_id: str, *, expect: int, timeout_s: float = 15.0, kinds: int = 2) -> list[Span]:
        """The spans of one trace, once at least ``expect`` have arrived from ``kinds`` services.

        Each process exports in its own batches, so a count alone can be reached by the
        gateway's spans (discover, tools/list) before the worker's span arrives.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                spans = [s for s in self.spans if s.trace_id == trace_id]
            services = {s.service for s in spans}
            if (len(spans) >= expect and len(services) >= kinds) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)


def tree(spans: list[Span]) -> str:
    """The trace as an indented tree: name, kind, service and span id per line."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in ids else "", []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            remote = f" (remote parent {span.parent_id})" if depth == 0 and span.parent_id else ""
            lines.append(f"{'  ' * depth}{span.name} [{span.kind}, {span.service}] span {span.span_id}{remote}")
            walk(span.span_id, depth + 1)

    walk("", 0)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    otlp.start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def box(receiver: OtlpReceiver) -> Iterator[Sandbox]:
    env = {
        "LLMC_OTEL_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=trace-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with Sandbox(chunk_delay_s=0.01, heartbeat_s=0.25, env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _provider_traceparent(box: Sandbox, provider: str) -> str:
    headers = httpx.get(f"{box.emulators.url(provider)}/_emulator/stats").json()["last_headers"]
    value: str = headers["traceparent"]
    return value


def _logged_trace_id(box: Sandbox, request_id: str, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        for line in (box.log_dir / "gateway.log").read_text().splitlines():
            record = orjson.loads(line)
            if record.get("event") == "tool_call" and record.get("request_id") == request_id:
                trace_id: str = record["trace_id"]
                return trace_id
        assert time.monotonic() < deadline, f"no tool_call line for request {request_id}"
        time.sleep(0.1)


def _one(spans: list[Span], name: str) -> Span:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"expected one {name!r} span, got {len(matching)}:\n{tree(spans)}"
    return matching[0]


def _check_stack_chain(spans: list[Span], tool: str, worker_span: str, provider: str, sent: str) -> Span:
    """tools/call → llm-caller tool → worker span → provider; returns the SDK's server span."""
    server = _one(spans, f"tools/call {tool}")
    gateway = _one(spans, f"llm-caller {tool}")
    worker = _one(spans, worker_span)
    assert (server.kind, server.service) == ("server", "llm-caller-gateway")
    assert (gateway.kind, gateway.service, gateway.parent_id) == ("internal", "llm-caller-gateway", server.span_id)
    assert (worker.kind, worker.service, worker.parent_id) == ("client", f"llm-caller-worker-{provider}",
                                                                 gateway.span_id)
    assert gateway.attributes["llmc.client"] == "demo" and gateway.attributes["llmc.outcome"] == "ok"
    assert gateway.attributes["llmc.provider"] == provider == worker.attributes["llmc.provider"]
    assert gateway.attributes["llmc.request_id"] == worker.attributes["llmc.request_id"]
    assert worker.resource["llmc.process"] == f"worker:{provider}"
    assert worker.resource["deployment.environment.name"] == "trace-test"
    # The provider's parent is the worker's span, in the same trace, sampled (flags may add
    # the W3C level-2 "random trace id" bit).
    version, trace_id, parent_id, flags = sent.split("-")
    assert (version, trace_id, parent_id) == ("00", worker.trace_id, worker.span_id), (sent, tree(spans))
    assert int(flags, 16) & 1 == 1
    return server


def _check_nothing_secret(receiver: OtlpReceiver, box: Sandbox, *texts: str) -> None:
    with receiver.lock:
        exported = b"".join(receiver.bodies)
    for secret in (*box.keys.values(), box.token, *texts):
        assert secret.encode() not in exported


_CLIENT_SCRIPT = """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from harness.sandbox import mcp_client

provider = TracerProvider(resource=Resource.create({"service.name": "trace-test-client"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)

async def main():
    with trace.get_tracer("trace-test").start_as_current_span("client work") as span:
        async with mcp_client(sys.argv[1], sys.argv[2]) as client:
            result = await client.call_tool("chat", {"prompt": sys.argv[3], "provider": "openai"})
    ctx = span.get_span_context()
    print(json.dumps({"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
                      "result": result.structured_content}))

asyncio.run(main())
provider.shutdown()
"""


def test_a_call_from_an_sdk_client_with_tracing_is_one_trace_to_the_provider(
    box: Sandbox, receiver: OtlpReceiver
) -> None:
    """The MCP SDK client puts its own span in ``_meta``; the whole chain hangs under the client's work span."""
    prompt = "secret prompt text 7c1e"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    out = subprocess.run([sys.executable, "-c", _CLIENT_SCRIPT, box.url, box.token, prompt], cwd=REPO_ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    client = orjson.loads(out.stdout.strip().splitlines()[-1])
    sent = _provider_traceparent(box, "openai")
    spans = receiver.trace(client["trace_id"], expect=5)
    print(f"\ntrace {client['trace_id']} (SDK client, _meta traceparent):\n{tree(spans)}\nprovider got {sent}")

    root = _one(spans, "client work")
    send = _one(spans, "MCP send tools/call chat")
    assert root.span_id == client["span_id"] and not root.parent_id
    assert (send.kind, send.parent_id, send.service) == ("client", root.span_id, "trace-test-client")
    server = _check_stack_chain(spans, "chat", "chat gpt-4o-mini", "openai", sent)
    assert server.parent_id == send.span_id
    assert _logged_trace_id(box, client["result"]["request_id"]) == client["trace_id"]
    _check_nothing_secret(receiver, box, prompt)


def test_a_header_traceparent_parents_the_gateway_spans(box: Sandbox, receiver: OtlpReceiver) -> None:
    """A client without OpenTelemetry that sends only the HTTP header: chatStream through Anthropic."""
    trace_id, parent = "5a1d0e7b9c2f4e6a8b0c1d2e3f405162", "1f2e3d4c5b6a7988"

    async def scenario() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {box.token}", "traceparent": f"00-{trace_id}-{parent}-01"}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http, \
                Client(streamable_http_client(box.url, http_client=http)) as client:
            chunks: list[str] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                chunks.append(message or "")

            result = await client.call_tool("chatStream", {"prompt": "stream under a header trace",
                                                           "provider": "anthropic"}, progress_callback=on_progress)
            assert chunks and not result.is_error
            return result.structured_content or {}

    data = run(scenario())
    sent = _provider_traceparent(box, "anthropic")
    spans = receiver.trace(trace_id, expect=3)
    print(f"\ntrace {trace_id} (HTTP header traceparent, parent {parent}):\n{tree(spans)}\nprovider got {sent}")

    model = data["model"]
    server = _check_stack_chain(spans, "chatStream", f"chat {model}", "anthropic", sent)
    assert server.parent_id == parent
    assert _one(spans, f"chat {model}").attributes["llmc.op"] == "chat_stream"
    assert _logged_trace_id(box, data["request_id"]) == trace_id
    _check_nothing_secret(receiver, box, "stream under a header trace")


def test_a_call_without_traceparent_is_one_new_trace_named_in_the_log(box: Sandbox, receiver: OtlpReceiver) -> None:
    """No trace context from the client: the gateway's span starts the trace the log and provider see."""

    async def scenario() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool("embed", {"input": ["vector me quietly"]})
            assert not result.is_error
            return result.structured_content or {}

    data = run(scenario())
    sent = _provider_traceparent(box, "openai")
    trace_id = _logged_trace_id(box, data["request_id"])
    spans = receiver.trace(trace_id, expect=3)
    print(f"\ntrace {trace_id} (no client traceparent):\n{tree(spans)}\nprovider got {sent}")

    server = _check_stack_chain(spans, "embed", "embeddings text-embedding-3-small", "openai", sent)
    assert not server.parent_id
    assert sent.split("-")[1] == trace_id
    _check_nothing_secret(receiver, box, "vector me quietly")


def test_a_failed_call_marks_its_spans_with_the_error_type(box: Sandbox, receiver: OtlpReceiver) -> None:
    """A provider error ends the worker's and the gateway's spans as errors, with the type and no text."""
    httpx.post(f"{box.emulators.url('openai')}/_emulator/faults",
               json={"faults": [{"mode": "status", "status": 400, "message": "provider says no 93ab"}]}
               ).raise_for_status()

    async def scenario() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool("chat", {"prompt": "fail me", "provider": "openai"})
            assert result.is_error
            return (result.structured_content or {})["error"]

    error = run(scenario())
    trace_id = _logged_trace_id(box, error["request_id"])
    spans = receiver.trace(trace_id, expect=3)
    print(f"\ntrace {trace_id} (provider error {error['type']}):\n{tree(spans)}")

    gateway = _one(spans, "llm-caller chat")
    worker = _one(spans, "chat gpt-4o-mini")
    assert worker.parent_id == gateway.span_id
    assert worker.attributes["error.type"] == gateway.attributes["error.type"] == error["type"]
    assert gateway.attributes["llmc.outcome"] == error["type"]
    assert worker.status == gateway.status == "error"
    _check_nothing_secret(receiver, box, "provider says no 93ab", "fail me")


def test_console_export_through_the_launcher_logs_the_spans_of_each_process() -> None:
    """``LLMC_OTEL_EXPORTER=console`` as an operator exports it: spans appear as JSON lines in each process log."""
    with Sandbox(heartbeat_s=0.25, env={"LLMC_OTEL_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}) as other:
        other.wait_workers_up()

        async def scenario() -> dict[str, Any]:
            async with other.client() as client:
                result = await client.call_tool("chat", {"prompt": "console trace", "provider": "anthropic"})
                return result.structured_content or {}

        data = run(scenario())
        trace_id = _logged_trace_id(other, data["request_id"])
        deadline = time.monotonic() + 10
        while True:
            spans = {}
            for name in ("gateway.log", "worker-anthropic.log"):
                for line in (other.log_dir / name).read_text().splitlines():
                    record = orjson.loads(line)  # span lines are JSON log lines like any other
                    if record.get("event") == "span" and record["trace_id"] == trace_id:
                        spans[record["span"]] = record
            if len(spans) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"\nconsole spans of trace {trace_id}:")
        for record in spans.values():
            print(f"  {record['process']}: {record['span']} span {record['span_id']} parent {record['parent_span_id']}")
        sent = _provider_traceparent(other, "anthropic")
        server, gateway = spans["tools/call chat"], spans["llm-caller chat"]
        worker = spans[f"chat {data['model']}"]
        assert (server["process"], worker["process"]) == ("gateway", "worker:anthropic")
        assert gateway["parent_span_id"] == server["span_id"] and worker["parent_span_id"] == gateway["span_id"]
        assert sent.split("-")[1:3] == [trace_id, worker["span_id"]]

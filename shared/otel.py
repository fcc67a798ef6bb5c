"""OpenTelemetry span export, shared by the gateway and every worker. Off unless asked for.

The operator turns it on for the whole stack with ``LLMC_OTEL_EXPORTER`` (or the standard
``OTEL_TRACES_EXPORTER``; ours wins when both are set):

    console   each finished span is one ``span`` line in the process's own JSON log
    otlp      OTLP over HTTP/protobuf, configured by the standard variables the exporter
              reads itself: OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT), ..._HEADERS,
              ..._TIMEOUT, ..._COMPRESSION, ..._CERTIFICATE
    none/unset  off

OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES shape the resource as usual; without a
service name each process names itself (``llm-caller-gateway``, ``llm-caller-worker-openai``),
and every span carries ``llmc.process``. The batch processor's OTEL_BSP_* knobs apply.
The exporter packages are the ``otel`` extra; without them the process logs one error
and runs untraced.

Off (the default), nothing here imports OpenTelemetry: ``active`` is None, and the hot
path's cost is that one test. On, ``active`` holds the tracer and the few API pieces the
span helpers need, imported once by ``configure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.logs import log_event

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import Span, SpanKind, Tracer

__all__ = ["ENV_VAR", "Tracing", "active", "configure", "format_traceparent", "parse_traceparent"]

log = logging.getLogger("shared.otel")

ENV_VAR = "LLMC_OTEL_EXPORTER"
_KINDS = ("console", "otlp")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_FIX = "install the otel extra (pip install 'llm-caller[otel]') or unset LLMC_OTEL_EXPORTER"


_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: object) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags), in lower-case hex, of a W3C ``traceparent``; None if invalid."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


class Tracing:
    """The configured tracer and what the span helpers need from the OpenTelemetry API."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import context, trace

        self.tracer = tracer
        self.kinds = trace.SpanKind
        self.status_error = trace.Status(trace.StatusCode.ERROR)
        self._trace = trace
        self._context = context

    def current_span(self) -> Span:
        return self._trace.get_current_span()

    def traceparent_of(self, span: Span) -> str:
        """The ``traceparent`` for the next hop, naming ``span`` as its parent."""
        ctx = span.get_span_context()
        return format_traceparent(ctx.trace_id, ctx.span_id, int(ctx.trace_flags))

    def remote_parent(self, traceparent: object) -> Any:
        """A context whose current span is the remote caller's; None when ``traceparent`` is invalid."""
        parsed = self.parse_remote(traceparent)
        if parsed is None:
            return None
        return self._trace.set_span_in_context(self._trace.NonRecordingSpan(parsed))

    def parse_remote(self, traceparent: object) -> Any:
        parsed = parse_traceparent(traceparent)
        if parsed is None:
            return None
        trace_id, span_id, flags = parsed
        return self._trace.SpanContext(trace_id=int(trace_id, 16), span_id=int(span_id, 16), is_remote=True,
                                       trace_flags=self._trace.TraceFlags(int(flags, 16)))

    @contextlib.contextmanager
    def attached(self, parent: Any) -> Iterator[None]:
        """Make ``parent`` (a context from ``remote_parent``) current inside the block."""
        token = self._context.attach(parent)
        try:
            yield
        finally:
            self._context.detach(token)

    @contextlib.contextmanager
    def span(self, name: str, kind: SpanKind, attributes: Mapping[str, Any], parent: Any = None) -> Iterator[Span]:
        """A span, current inside the block, whose failures record the exception's type only.

        Exception messages can quote provider text, so neither the message nor a
        stack trace goes into the span.
        """
        with self.tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as exc:
                # The taxonomy type when there is one; "cancelled" as in the tool_call line.
                error = "cancelled" if isinstance(exc, asyncio.CancelledError) else getattr(exc, "type", None)
                span.set_attribute("error.type", error if isinstance(error, str) else type(exc).__name__)
                span.set_status(self.status_error)
                raise

    def fail(self, span: Span, error_type: str) -> None:
        """Mark ``span`` failed with a taxonomy error type (never a message)."""
        span.set_attribute("error.type", error_type)
        span.set_status(self.status_error)


# The one flag: None unless configure() installed an exporter in this process.
active: Tracing | None = None


def requested_exporter(env: Mapping[str, str]) -> str | None:
    """``console`` / ``otlp`` if the operator asked for span export, else None."""
    kind = env.get(ENV_VAR, "").strip().lower() or env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return kind if kind in _KINDS else None


def configure(process: str, env: Mapping[str, str] | None = None) -> bool:
    """Install a span exporter for this process if the operator asked for one. Returns whether it did.

    ``process`` is ``gateway`` or ``worker:<provider>``. A value we do not know, a protocol
    other than HTTP/protobuf, or a missing extra is logged once and leaves tracing off.
    """
    global active
    env = os.environ if env is None else env
    raw = env.get(ENV_VAR, "").strip().lower() or env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    kind = requested_exporter(env)
    if kind is None:
        if raw and raw != "none":
            log_event(log, "tracing_unavailable", level=logging.ERROR, exporter=raw[:40],
                      fix="set LLMC_OTEL_EXPORTER to console or otlp")
        return False
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if kind == "otlp" and protocol != "http/protobuf":
        log_event(log, "tracing_unavailable", level=logging.ERROR, protocol=protocol[:40],
                  fix="only OTLP over http/protobuf is supported; set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
        return False
    try:
        provider = _provider(kind, process, env)
    except ImportError:
        log_event(log, "tracing_unavailable", level=logging.ERROR, exporter=kind, fix=_FIX)
        return False
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    active = Tracing(trace.get_tracer("llm-caller"))
    log_event(log, "tracing_enabled", exporter=kind, service=_service_name(process, env))
    return True


def _service_name(process: str, env: Mapping[str, str]) -> str:
    given = env.get("OTEL_SERVICE_NAME", "").strip()
    return given or "llm-caller-" + process.replace(":", "-")


def _provider(kind: str, process: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    exporter: SpanExporter
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_* as read by the exporter
    else:
        exporter = _log_exporter()
    # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are read by Resource.create itself;
    # a service name given here would override the operator's.
    attributes = {"llmc.process": process}
    if not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = _service_name(process, env)
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _log_exporter() -> Any:
    """A span exporter writing each span as one ``span`` line through the process's JSON log."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    span_log = logging.getLogger("llmc.spans")

    class LogSpanExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            for span in spans:
                ctx = span.get_span_context()
                parent = span.parent
                log_event(
                    span_log, "span", span=span.name, kind=span.kind.name.lower(),
                    trace_id=f"{ctx.trace_id:032x}" if ctx else None, span_id=f"{ctx.span_id:016x}" if ctx else None,
                    parent_span_id=f"{parent.span_id:016x}" if parent else None,
                    duration_ms=round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 3),
                    status=span.status.status_code.name.lower(), attributes=dict(span.attributes or {}),
                )
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    return LogSpanExporter()

"""The worker's span: one per provider call, parented on the gateway's hop, parent of the provider's.

The gateway's ``traceparent`` travels inside the REQUEST message (``ChatRequest`` /
``EmbedRequest`` ``traceparent``, signed with the rest of the frame). With span export on
(``shared.otel.active``), the worker opens a CLIENT span under it, named the way the
GenAI semantic conventions name an inference call (``chat gpt-4o-mini``,
``embeddings text-embedding-3-small``), and rewrites the request's ``traceparent`` so the
provider sees this span as its parent. With export off the worker is never asked: the
gateway's hop stays the provider's parent, and no OpenTelemetry code is imported.

Attributes are names and ids only: never prompt text, never a key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from shared import otel
from shared.messages import Op, WorkRequest

__all__ = ["TRACED_OPS", "provider_call_span"]

# Operations that reach the provider on a caller's behalf; "models" (discovery) is not traced.
TRACED_OPS = {Op.CHAT: "chat", Op.CHAT_STREAM: "chat", Op.EMBED: "embeddings"}
_MAX_NAME = 128


@contextlib.contextmanager
def provider_call_span(
    tracing: otel.Tracing, provider: str, kind: str | None, request_id: str, work: WorkRequest
) -> Iterator[None]:
    """The span around one REQUEST; the provider's ``traceparent`` names it as parent."""
    op = work.op.value
    operation = TRACED_OPS[work.op]
    request = work.request
    model = request.get("model")
    model = model[:_MAX_NAME] if isinstance(model, str) else ""
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": kind or provider,
        "gen_ai.request.model": model,
        "llmc.provider": provider,
        "llmc.op": op,
        "llmc.request_id": request_id,
    }
    parent = tracing.remote_parent(request.get("traceparent"))
    name = f"{operation} {model}".strip()
    with tracing.span(name, tracing.kinds.CLIENT, attributes, parent) as span:
        request["traceparent"] = tracing.traceparent_of(span)
        yield


def mark_failed(error_type: str) -> None:
    """Record a taxonomy error on the current worker span (a no-op with export off)."""
    tracing = otel.active
    if tracing is not None:
        tracing.fail(tracing.current_span(), error_type)

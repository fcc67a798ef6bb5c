"""Response composition: one result shape per tool, whichever provider answered.

Successful calls return ``structured_content`` matching the tool's output schema plus a
text block for clients that only read text. Failures return an MCP tool error
(``isError``) whose structured content is ``{"error": {type, message, retryable,
retry_after_s, provider, request_id}}``: the same taxonomy a worker sends, never a
traceback or a secret.
"""

from __future__ import annotations

from typing import Any

import orjson
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from gateway.router import Route
from gateway.tool_schemas import ChatOutput, EmbedOutput, RouteOut, UsageOut
from shared.front_contract import error_result
from shared.models import ChatResult, EmbedResult

__all__ = ["chat_output", "embed_output", "error_result", "success_result"]


def _usage(data: dict[str, Any]) -> UsageOut:
    return UsageOut(
        input_tokens=data.get("input_tokens"),
        output_tokens=data.get("output_tokens"),
        total_tokens=data.get("total_tokens"),
    )


def _route(route: Route) -> RouteOut:
    return RouteOut(provider=route.provider, model=route.model, reason=route.reason)


def chat_output(
    reply: dict[str, Any], route: Route, request_id: str, latency_ms: float, chunks: int | None = None
) -> ChatOutput:
    result = ChatResult.from_wire(reply)
    return ChatOutput(
        text=result.text,
        model=result.model or route.model,
        provider=route.provider,
        finish_reason=result.finish_reason,
        usage=_usage(reply.get("usage") or {}),
        latency_ms=round(latency_ms, 3),
        request_id=request_id,
        route=_route(route),
        chunks=chunks,
        notifications=None,  # counted by the MCP layer, which alone knows what it sent
    )


def embed_output(reply: dict[str, Any], route: Route, request_id: str, latency_ms: float) -> EmbedOutput:
    result = EmbedResult.from_wire(reply)
    return EmbedOutput(
        vectors=result.vectors,
        dimensions=len(result.vectors[0]) if result.vectors else 0,
        model=result.model or route.model,
        provider=route.provider,
        usage=_usage(reply.get("usage") or {}),
        latency_ms=round(latency_ms, 3),
        request_id=request_id,
        route=_route(route),
    )


def success_result(output: BaseModel, text: str | None = None) -> CallToolResult:
    structured = output.model_dump(mode="json")
    body = text if text is not None else orjson.dumps(structured).decode()
    return CallToolResult(content=[TextContent(type="text", text=body)], structured_content=structured)

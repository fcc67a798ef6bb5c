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
from gateway.structured_output import parse_reply
from gateway.tool_schemas import ChatOutput, EmbedOutput, RouteOut, ToolCallOut, UsageOut
from shared.chat_parts import ResponseFormat
from shared.front_contract import error_result
from shared.models import ChatResult, EmbedResult

__all__ = ["chat_output", "embed_output", "error_result", "success_result"]


def _usage(data: dict[str, Any]) -> UsageOut:
    return UsageOut(
        input_tokens=data.get("input_tokens"),
        output_tokens=data.get("output_tokens"),
        total_tokens=data.get("total_tokens"),
        cached_input_tokens=data.get("cached_input_tokens"),
        reasoning_tokens=data.get("reasoning_tokens"),
    )


def _route(route: Route) -> RouteOut:
    return RouteOut(provider=route.provider, model=route.model, reason=route.reason)


def chat_output(
    reply: dict[str, Any], route: Route, request_id: str, latency_ms: float, chunks: int | None = None,
    response_format: ResponseFormat | None = None,
) -> ChatOutput:
    """The chat result; with ``response_format`` the reply is parsed and checked (``invalid_output`` if it fails).

    Tool calls, thinking text and parsed JSON are set only when present, so a plain text
    reply composes what it did before (``ChatOutput.structured``).
    """
    result = ChatResult.from_wire(reply)
    output = ChatOutput(
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
    if result.tool_calls is not None:
        output.tool_calls = [ToolCallOut(id=c.id, name=c.name, arguments=c.arguments) for c in result.tool_calls]
    if result.reasoning is not None:
        output.reasoning = result.reasoning
    if response_format is not None and not result.tool_calls:
        output.parsed = parse_reply(result.text, response_format, result.finish_reason)
    return output


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
    structured = output.structured() if isinstance(output, ChatOutput) else output.model_dump(mode="json")
    body = text if text is not None else orjson.dumps(structured).decode()
    return CallToolResult(content=[TextContent(type="text", text=body)], structured_content=structured)

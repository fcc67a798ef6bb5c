"""One call of each kind, against each kind of target, timed and classified.

Every call ends in exactly one outcome string: ``ok``, a taxonomy error type (from the
result's ``structured_content["error"]["type"]``), ``untyped_error`` (a tool error with
no taxonomy type, which is what the baseline's SDK produces), ``no_progress`` (a stream
that finished without a single progress notification), ``hang`` (the per-call timeout
fired) or ``exception:<Class>`` (the client itself failed).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from mcp import Client

from shared.timeline import mark

__all__ = ["CallOutcome", "Target", "call_direct", "call_mcp", "classify_result", "tool_arguments"]

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"


@dataclass(frozen=True, slots=True)
class Target:
    """Where calls go. ``kind`` "http" is the emulator itself; "mcp" is an MCP endpoint."""

    name: str
    kind: str
    url: str
    token: str = ""  # the emulator key for "http", the client bearer token for "mcp" ("" = none)


@dataclass(slots=True)
class CallOutcome:
    tool: str
    outcome: str
    latency_s: float
    ttfp_s: float | None = None  # chatStream: time to the first progress notification / delta


def tool_arguments(tool: str, index: int) -> dict[str, Any]:
    """The same small payload for every target, so only the path differs."""
    if tool == "embed":
        return {"input": f"benchmark text number {index}"}
    return {"prompt": f"Benchmark call {index}: please say hello"}


def classify_result(result: Any) -> str:
    if not result.is_error:
        return "ok"
    content = result.structured_content or {}
    error = content.get("error") if isinstance(content, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return str(error["type"])
    return "untyped_error"


async def call_mcp(client: Client, tool: str, index: int, timeout_s: float, *, provider: str | None = None
                   ) -> CallOutcome:
    """One MCP call; ``provider`` names where it goes (routing decides without it)."""
    arguments = tool_arguments(tool, index)
    if provider is not None:
        arguments["provider"] = provider
    first: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if not first:
            first.append(time.perf_counter())

    mark("client.send")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            callback = on_progress if tool == "chatStream" else None
            result = await client.call_tool(tool, arguments, progress_callback=callback)
        outcome = classify_result(result)
    except TimeoutError:
        outcome = "hang"
    except Exception as exc:
        outcome = f"exception:{type(exc).__name__}"
    elapsed = time.perf_counter() - started
    mark("client.done")
    if tool == "chatStream" and outcome == "ok" and not first:
        outcome = "no_progress"
    return CallOutcome(tool, outcome, elapsed, first[0] - started if first else None)


def _direct_request(tool: str, index: int) -> tuple[str, dict[str, Any]]:
    args = tool_arguments(tool, index)
    if tool == "embed":
        return "/v1/embeddings", {"model": EMBED_MODEL, "input": args["input"]}
    body: dict[str, Any] = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": args["prompt"]}]}
    if tool == "chatStream":
        body.update(stream=True, stream_options={"include_usage": True})
    return "/v1/chat/completions", body


def _has_text(chunk: dict[str, Any]) -> bool:
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


async def _direct_stream(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], started: float
) -> tuple[str, float | None]:
    first: float | None = None
    async with http.stream("POST", path, content=orjson.dumps(body)) as response:
        if response.status_code != 200:
            await response.aread()
            return f"http_{response.status_code}", None
        done = False
        async for line in response.aiter_lines():
            # The first chunk only names the role (content ""): time the first real text,
            # as an MCP client sees it in its first progress notification.
            if first is None and line.startswith("data: {") and _has_text(orjson.loads(line[6:])):
                first = time.perf_counter() - started
            done = done or line == "data: [DONE]"
    return ("ok" if done else "stream_interrupted"), first


async def call_direct(http: httpx.AsyncClient, tool: str, index: int, timeout_s: float) -> CallOutcome:
    path, body = _direct_request(tool, index)
    started = time.perf_counter()
    ttfp: float | None = None
    try:
        async with asyncio.timeout(timeout_s):
            if tool == "chatStream":
                outcome, ttfp = await _direct_stream(http, path, body, started)
            else:
                response = await http.post(path, content=orjson.dumps(body))
                # Parse like a real client does; a floor that skips this would flatter the others.
                orjson.loads(response.content)
                outcome = "ok" if response.status_code == 200 else f"http_{response.status_code}"
    except TimeoutError:
        outcome = "hang"
    except Exception as exc:
        outcome = f"exception:{type(exc).__name__}"
    return CallOutcome(tool, outcome, time.perf_counter() - started, ttfp)

"""Client 1: the official MCP Python SDK (``mcp.Client``) over streamable HTTP.

Each scenario gets its own client and HTTP connection, as an independent tool would.
The latency reported is the call alone, after the connection is set up.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from uat.expectations import Observation
from uat.scenarios import Scenario

__all__ = ["INVALID_TOKEN", "observe_sdk"]

# Well-formed (same prefix and length as a real one) but in no registry.
INVALID_TOKEN = "llmc_" + "A" * 43


def _describe(exc: BaseException) -> str:
    """The innermost causes of an exception (task groups nest them), one line."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:500]


def _call_observation(result: Any, progress: list[str]) -> Observation:
    text = " ".join(getattr(block, "text", "") for block in result.content)
    return Observation(is_error=bool(result.is_error), structured=result.structured_content, text=text,
                       progress=progress)


async def _observe(client: Client, scenario: Scenario) -> Observation:
    if scenario.method == "tools/list":
        listed = await client.list_tools()
        return Observation(structured=listed.model_dump(mode="json", by_alias=True, exclude_none=True))
    deltas: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        deltas.append(message or "")

    assert scenario.tool is not None
    result = await client.call_tool(scenario.tool, scenario.arguments, progress_callback=on_progress)
    return _call_observation(result, deltas)


async def observe_sdk(url: str, token: str, scenario: Scenario, mode: str = "auto") -> tuple[Observation, float]:
    """Run one scenario; returns what was seen and the call's latency in milliseconds."""
    statuses: list[int] = []

    async def record_status(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    bearer = INVALID_TOKEN if scenario.wants_invalid_token else token
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=httpx2.Timeout(60.0),
                              event_hooks={"response": [record_status]})
    started = time.perf_counter()
    try:
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            started = time.perf_counter()
            seen = await _observe(client, scenario)
    except Exception as exc:
        # The SDK reports a 401 as a generic JSON-RPC error; the HTTP status is the fact we need.
        seen = Observation(auth_rejected=401 in statuses, failure=_describe(exc))
    return seen, (time.perf_counter() - started) * 1000

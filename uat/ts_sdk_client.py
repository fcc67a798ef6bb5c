"""Client 3: the official MCP TypeScript SDK (``@modelcontextprotocol/sdk``, v1) over streamable HTTP.

``uat/ts_sdk_client.mjs`` runs in a fresh Node process per call on the pinned Node 22. The
URL, token and arguments go to it on stdin, never on its command line. It lists the tools
before calling one, as a client does, so the SDK checks every ``structuredContent``
against the tool's ``outputSchema``; it passes an ``onprogress`` handler, so progress
notifications are observed. The Inspector is built on the v2 client
(``@modelcontextprotocol/client``), so this v1 client is a separate implementation.
The latency reported is the call alone, measured inside Node.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from uat.expectations import Observation
from uat.node_tools import UAT_DIR, tool_environment, tool_path
from uat.scenarios import Scenario
from uat.sdk_client import INVALID_TOKEN

__all__ = ["SCRIPT", "observe_ts_sdk", "ts_observation"]

SCRIPT = UAT_DIR / "ts_sdk_client.mjs"
_TIMEOUT_S = 150


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def ts_observation(scenario: Scenario, done: subprocess.CompletedProcess[str]) -> tuple[Observation, float | None]:
    """What the script printed, as an Observation, and the call's own latency when it reported one."""
    payload = _last_json_line(done.stdout)
    if done.returncode != 0 or payload is None:
        said = (done.stderr or done.stdout).strip()[-400:]
        return Observation(failure=f"exit {done.returncode}: {said or 'no output'}"), None
    if "failure" in payload:
        return Observation(auth_rejected=bool(payload.get("auth_rejected")), failure=str(payload["failure"])), None
    result = payload.get("result") or {}
    latency = payload.get("call_ms")
    call_ms = float(latency) if isinstance(latency, (int, float)) else None
    if scenario.method == "tools/list":
        return Observation(structured=result), call_ms
    text = " ".join(block.get("text", "") for block in result.get("content", []) if isinstance(block, dict))
    progress = [str(message) for message in payload.get("progress", [])]
    return Observation(is_error=bool(result.get("isError")), structured=result.get("structuredContent"), text=text,
                       progress=progress), call_ms


def observe_ts_sdk(url: str, token: str, scenario: Scenario) -> tuple[Observation, float]:
    """Run one call in a fresh Node process; returns what it saw and the latency in ms."""
    request = {"url": url, "token": INVALID_TOKEN if scenario.wants_invalid_token else token,
               "method": scenario.method, "tool": scenario.tool, "arguments": scenario.arguments}
    started = time.perf_counter()
    try:
        done = subprocess.run([str(tool_path("node")), str(SCRIPT)], input=json.dumps(request), env=tool_environment(),
                              cwd=UAT_DIR, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return Observation(failure=f"no answer within {_TIMEOUT_S}s"), (time.perf_counter() - started) * 1000
    seen, call_ms = ts_observation(scenario, done)
    return seen, call_ms if call_ms is not None else (time.perf_counter() - started) * 1000

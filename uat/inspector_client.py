"""Client 2: the official MCP Inspector in CLI mode (``inspector --cli``), a Node program.

The server entry is written to a private JSON file in the same shape the README tells
users to give their MCP clients (``mcpServers`` with ``type``, ``url``, ``headers``), so
the token never appears on a command line (where ``ps`` would show it) and the README's
snippet is exercised by a real client. ``HOME`` points into the run's scratch folder so
no stored OAuth state of the operator's is read or written.

What the Inspector cannot show: its CLI runs with progress reporting switched off and
prints only the final result, so expectations about progress notifications are reported
as not observable (N/A) rather than passed. Its latency includes Node start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from uat.expectations import Observation
from uat.node_tools import tool_environment, tool_path
from uat.scenarios import Scenario
from uat.sdk_client import INVALID_TOKEN

__all__ = ["inspector_command", "observe_inspector"]

_SERVER = "llm-caller"
_TIMEOUT_S = 120


def _encode_value(value: Any) -> str:
    """A ``--tool-arg`` value: the CLI JSON-parses each value and falls back to the raw text,
    so a string that would parse as JSON ("42", "true", "") is sent quoted to stay a string."""
    if not isinstance(value, str):
        return json.dumps(value)
    try:
        json.loads(value)
    except ValueError:
        return value or '""'
    return json.dumps(value)


def _write_config(folder: Path, url: str, bearer: str) -> Path:
    path = folder / "mcp.json"
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {bearer}"}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"mcpServers": {_SERVER: entry}}, handle)
    return path


# The Inspector CLI exits 5 when a tool returns isError: true; the result file holds it.
_TOOL_IS_ERROR_EXIT = 5


def inspector_command(config: Path, scenario: Scenario, era: str, output: Path | None = None) -> list[str]:
    command = [str(tool_path("inspector")), "--cli", "--config", str(config), "--server", _SERVER,
               "--protocol-era", era, "--stored-auth-only", "--format", "json", "--method", scenario.method]
    if scenario.method == "tools/list":
        return [*command, "--strict"]  # also fail on tool-schema portability errors
    assert scenario.tool is not None
    command += ["--tool-name", scenario.tool]
    if scenario.arguments:
        command += ["--tool-arg", *(f"{key}={_encode_value(value)}" for key, value in scenario.arguments.items())]
    if output is not None:
        command += ["--output", str(output)]
    return command


def _parse_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    try:
        whole = json.loads(text)
    except ValueError:
        return None
    return whole if isinstance(whole, dict) else None


def _observation(scenario: Scenario, done: subprocess.CompletedProcess[str], output: Path | None = None) -> Observation:
    payload = _parse_json(done.stdout) or _parse_json(done.stderr) or {}
    if output is not None and output.exists() and done.returncode in (0, _TOOL_IS_ERROR_EXIT):
        written = _parse_json(output.read_text())
        if written is not None:
            payload = {"result": written.get("result", written)}
            done = subprocess.CompletedProcess(done.args, 0, done.stdout, done.stderr)
    if done.returncode != 0 or "result" not in payload:
        raw_error = payload.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        code = str(error.get("code", "?"))
        message = str(error.get("message") or (done.stderr or done.stdout).strip()[-400:])
        return Observation(auth_rejected=code == "auth_required", failure=f"exit {done.returncode}, {code}: {message}")
    result = payload["result"]
    if scenario.method == "tools/list":
        return Observation(structured=result)
    text = " ".join(block.get("text", "") for block in result.get("content", []) if isinstance(block, dict))
    return Observation(is_error=bool(result.get("isError")), structured=result.get("structuredContent"), text=text,
                       progress=None)


def observe_inspector(url: str, token: str, scenario: Scenario, scratch: Path,
                      era: str = "legacy") -> tuple[Observation, float]:
    """Run one scenario in a fresh Inspector process; returns what it saw and the wall time in ms."""
    folder = scratch / scenario.name
    (folder / "home").mkdir(parents=True, exist_ok=True)
    config = _write_config(folder, url, INVALID_TOKEN if scenario.wants_invalid_token else token)
    env = tool_environment()
    env["HOME"] = str(folder / "home")
    # Where the Inspector would keep OAuth secrets: memory, since we never use its OAuth.
    env["MCP_INSPECTOR_SECRET_STORE"] = "memory"  # noqa: S105 (a store kind, not a secret)
    output = folder / "result.json" if scenario.method == "tools/call" else None
    if output is not None:
        output.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(inspector_command(config, scenario, era, output), env=env, capture_output=True,
                              text=True, timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return Observation(failure=f"no answer within {_TIMEOUT_S}s"), (time.perf_counter() - started) * 1000
    return _observation(scenario, done, output), (time.perf_counter() - started) * 1000

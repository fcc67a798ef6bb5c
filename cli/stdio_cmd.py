"""``llm-caller stdio``: serve the tools over STDIO to the MCP client that launched this process.

The client's configuration names the command and its environment, for example::

    {"mcpServers": {"llm-caller": {"command": "/path/to/.venv/bin/llm-caller", "args": ["stdio"],
                                   "env": {"LLMC_TOKEN": "llmc_..."}}}}

Everything else (the gateway it forwards to, the checks) is in ``gateway.stdio_front``.
"""

from __future__ import annotations

import argparse
from typing import Any

from shared.tool_names import describe_tools

__all__ = ["register"]


def _stdio(args: argparse.Namespace) -> int:
    # Imported here: the MCP server stack is not needed by the other subcommands.
    from gateway.stdio_front import main

    return main()


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stdio",
        help="serve the MCP tools over STDIO via the running gateway (env LLMC_TOKEN, LLMC_GATEWAY_URL)",
        description=f"Serve {describe_tools()} over STDIO for an MCP client that launches "
                    "this command. Reads LLMC_TOKEN (a client or session token) and LLMC_GATEWAY_URL "
                    "(default http://127.0.0.1:$LLMC_PORT) from the environment; exit code 2 on a bad token.",
    )
    parser.set_defaults(handler=_stdio)

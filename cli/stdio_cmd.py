"""``llm-caller stdio``: serve the tools over STDIO to the MCP client that launched this process.

The client's configuration names the command and its environment, for example::

    {"mcpServers": {"llm-caller": {"command": "/path/to/.venv/bin/llm-caller", "args": ["stdio"],
                                   "env": {"LLMC_TOKEN": "llmc_..."}}}}

Everything else (the gateway it forwards to, the checks) is in ``stdio_front.front``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from cli.options import add_run_dir, reporting, resolve_settings
from shared.tool_names import describe_tools

__all__ = ["register"]


def gateway_environment(args: argparse.Namespace) -> dict[str, str]:
    """This process's environment, plus LLMC_GATEWAY_URL for the running stack when it is not set.

    The port comes from the one resolution every command uses: LLMC_PORT, else the record
    the stack started by ``up`` left in its run folder (so ``up --port N`` is remembered),
    else 8765.
    """
    environ = dict(os.environ)
    if not environ.get("LLMC_GATEWAY_URL", "").strip():
        environ["LLMC_GATEWAY_URL"] = f"http://127.0.0.1:{resolve_settings(args).port}"
    return environ


@reporting
def _stdio(args: argparse.Namespace) -> int:
    # Imported here: the MCP server stack is not needed by the other subcommands.
    from stdio_front.front import main

    return main(gateway_environment(args))


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stdio",
        help="serve the MCP tools over STDIO via the running gateway (env LLMC_TOKEN, LLMC_GATEWAY_URL)",
        description=f"Serve {describe_tools()} over STDIO for an MCP client that launches "
                    "this command. Reads LLMC_TOKEN (a client or session token) and LLMC_GATEWAY_URL "
                    "(default: $LLMC_PORT, else the port the stack running from the run folder recorded, else 8765) "
                    "from the environment; exit code 2 on a bad token.",
    )
    add_run_dir(parser)
    parser.set_defaults(handler=_stdio)

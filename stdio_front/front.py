"""``llm-caller stdio``: the MCP tools over STDIO, for MCP clients that launch a subprocess.

A thin MCP server (the SDK's low-level ``Server`` over stdio; the client's first message
picks the protocol era, 2026-07-28 or 2025-11-25) that forwards every ``tools/list`` and
``tools/call`` to the running HTTP gateway, as an MCP client holding a session token
bound to transport ``stdio``. Progress notifications (``chatStream`` deltas) are relayed
to the STDIO client as they arrive; ``stdio_front.upstream`` holds the client they go
through. MCP Tasks are relayed, never decided here (``stdio_front.tasks``). So
authentication, routing, per-client limits and rate limits stay in the one gateway
process however many front ends run (decisions D12).

Environment:

    LLMC_TOKEN         a client token (llmc_…) or a session token (llmcs_…)    required
    LLMC_GATEWAY_URL   the gateway, on this machine                            http://127.0.0.1:$LLMC_PORT

The token is checked before anything is served. A missing, malformed, invalid, expired
or disabled token ends the process with exit code 2 and one line on stderr; an
unreachable gateway with exit code 1. Nothing but MCP messages is ever written to
stdout, and no traceback is ever printed. A result that follows progress notifications
leaves only once the client has read them (``stdio_front.wire``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

from shared.front_contract import TRANSPORT_HEADER
from shared.logs import configure_logging, log_event
from shared.tool_names import describe_tools
from shared.version import VERSION
from stdio_front.credential import EXIT_CREDENTIAL, EXIT_FAILED, Credential, FrontError, GatewayAuth
from stdio_front.tasks import install_task_relay
from stdio_front.upstream import Upstream
from stdio_front.wire import PacedWrites, Wire, claimed_stdout

__all__ = ["FrontConfig", "build_front_server", "main"]

log = logging.getLogger("stdio")

SESSION_TTL_S = 900
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_TOKEN_PREFIXES = ("llmc_", "llmcs_")  # client and session tokens


@dataclass(frozen=True, slots=True)
class FrontConfig:
    gateway: str  # base URL, without /mcp
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FrontConfig:
        token = env.get("LLMC_TOKEN", "").strip()
        if not token:
            raise FrontError(EXIT_CREDENTIAL, "LLMC_TOKEN is not set: put a client token (llmc_...) or a session "
                             "token (llmcs_...) in this server's environment in the MCP client's configuration")
        if not token.startswith(_TOKEN_PREFIXES):
            # Refuse before sending: a provider key pasted here must not travel anywhere.
            raise FrontError(EXIT_CREDENTIAL, "LLMC_TOKEN is not an LLM Caller token (those start with llmc_ or "
                             "llmcs_); `llm-caller clients add NAME` prints one")
        return cls(gateway=_gateway_url(env), token=token)


def _gateway_url(env: Mapping[str, str]) -> str:
    raw = env.get("LLMC_GATEWAY_URL", "").strip() or f"http://127.0.0.1:{env.get('LLMC_PORT', '8765').strip()}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme != "http" or parts.hostname not in _LOOPBACK or port is None:
        raise FrontError(EXIT_CREDENTIAL, "LLMC_GATEWAY_URL must look like http://127.0.0.1:8765 (the gateway "
                         "listens on this machine only, and the token must not leave it)")
    host = f"[{parts.hostname}]" if parts.hostname == "::1" else parts.hostname
    return f"http://{host}:{port}"


def build_front_server(upstream: Upstream) -> Server[Any]:
    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        return await upstream.list_tools()

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        return await upstream.call_tool(ctx, params)  # type: ignore[return-value]  # or a CreateTaskResult

    server: Server[Any] = Server(
        "llm-caller",
        version=VERSION,
        instructions=f"LLM Caller over STDIO: {describe_tools()} across configured LLM providers.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    install_task_relay(server, upstream.send_task_request)
    return server


async def serve(config: FrontConfig) -> None:
    timeout = httpx2.Timeout(10.0, read=None)  # read: a chat may think for minutes; the gateway has deadlines
    async with httpx2.AsyncClient(timeout=timeout) as plain:
        credential = Credential(config.gateway, config.token, SESSION_TTL_S, plain)
        await credential.start()
        log_event(log, "stdio_front_ready", client=credential.client_id, gateway=config.gateway)
        async with httpx2.AsyncClient(timeout=timeout, auth=GatewayAuth(credential),
                                      headers={TRANSPORT_HEADER: "stdio"}) as http, \
                anyio.create_task_group() as tasks:
            upstream = Upstream(config.gateway, credential, http, tasks)
            server = build_front_server(upstream)
            try:
                with claimed_stdout() as fd:
                    wire = Wire(fd)
                    async with stdio_server(stdout=cast(Any, wire)) as (read_stream, write_stream):
                        await server.run(read_stream, PacedWrites(write_stream, wire),
                                         server.create_initialization_options())
            finally:
                upstream.close()


def main(env: Mapping[str, str] | None = None) -> int:
    environ = os.environ if env is None else env
    configure_logging("stdio", environ.get("LLMC_LOG_LEVEL", "WARNING").upper())
    try:
        asyncio.run(serve(FrontConfig.from_env(environ)))
    except FrontError as exc:
        return _fail(exc.code, str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback on an MCP client's console
        return _fail(EXIT_FAILED, f"stopped by an unexpected error ({type(exc).__name__})")
    return 0


def _fail(code: int, message: str) -> int:
    print(f"llm-caller stdio: {message}", file=sys.stderr, flush=True)
    return code

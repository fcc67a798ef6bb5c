"""The baseline: the smallest honest MCP server in front of the OpenAI emulator.

One process, the official SDK's ``MCPServer``, streamable HTTP on 127.0.0.1 through
uvicorn, no auth, no routing, no worker hop. Each tool makes one call to the emulator
with a shared ``httpx.AsyncClient``. Whatever the full stack costs on top of this is the
price of its process isolation, auth, validation and composition.

    python -m bench.baseline_server --port 40200 --upstream http://127.0.0.1:40123

The emulator's key comes from the ``BENCH_UPSTREAM_KEY`` environment variable, never
from argv (argv is visible to every user through ``ps``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import httpx
import orjson
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.timeline import enabled as timeline_enabled
from shared.timeline import mark

__all__ = ["build_server", "main"]

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"


class ChatReply(BaseModel):
    text: str
    model: str
    finish_reason: str | None
    total_tokens: int | None
    chunks: int | None = None


class EmbedReply(BaseModel):
    vectors: list[list[float]]
    dimensions: int
    model: str


class Upstream:
    """The shared HTTP client, created on first use so it binds to uvicorn's event loop."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # Enough connections that 128 concurrent calls never queue in the pool:
            # the baseline must not be handicapped by a limit the real server lacks.
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers={"authorization": f"Bearer {self.key}"},
                timeout=httpx.Timeout(30.0),
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
                trust_env=False,
            )
        return self._client

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.client.post(path, content=orjson.dumps(body),
                                          headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"upstream answered {response.status_code}")
        return orjson.loads(response.content)


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def build_server(upstream: Upstream) -> MCPServer[Any]:
    # WARNING: the SDK logs every request at INFO, which is not part of serving one.
    server: MCPServer[Any] = MCPServer("bench-baseline", version="0", log_level="WARNING")

    @server.tool()
    async def chat(prompt: str) -> ChatReply:
        """Send one prompt to the emulated model and return its reply."""
        mark("baseline.tool_in")
        data = await upstream.post_json("/v1/chat/completions", {"model": CHAT_MODEL, "messages": _messages(prompt)})
        choice = data["choices"][0]
        mark("baseline.tool_out")
        return ChatReply(text=choice["message"]["content"], model=data["model"],
                         finish_reason=choice.get("finish_reason"), total_tokens=data["usage"]["total_tokens"])

    @server.tool(name="chatStream")
    async def chat_stream(prompt: str, ctx: Context) -> ChatReply:
        """Like chat, but each text delta is sent as a progress notification as it arrives."""
        return await _stream_chat(upstream, prompt, ctx)

    @server.tool()
    async def embed(input: str | list[str]) -> EmbedReply:
        """Turn one text or a list of texts into embedding vectors."""
        mark("baseline.tool_in")
        data = await upstream.post_json("/v1/embeddings", {"model": EMBED_MODEL, "input": input})
        mark("baseline.tool_out")
        vectors = [item["embedding"] for item in data["data"]]
        return EmbedReply(vectors=vectors, dimensions=len(vectors[0]) if vectors else 0, model=data["model"])

    return server


async def _healthz(_request: Request) -> Response:
    # Readiness for the benchmark runner only; never on the measured path.
    return JSONResponse({"status": "ok"})


async def _stream_chat(upstream: Upstream, prompt: str, ctx: Context) -> ChatReply:
    body = {"model": CHAT_MODEL, "messages": _messages(prompt), "stream": True,
            "stream_options": {"include_usage": True}}
    parts: list[str] = []
    finish: str | None = None
    total: int | None = None
    async with upstream.client.stream("POST", "/v1/chat/completions", content=orjson.dumps(body),
                                      headers={"content-type": "application/json"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"upstream answered {response.status_code}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = orjson.loads(line[6:])
            if chunk.get("usage"):
                total = chunk["usage"]["total_tokens"]
            for choice in chunk.get("choices", ()):
                finish = choice.get("finish_reason") or finish
                text = choice.get("delta", {}).get("content")
                if text:
                    parts.append(text)
                    await ctx.report_progress(len(parts), None, text)
    return ChatReply(text="".join(parts), model=CHAT_MODEL, finish_reason=finish, total_tokens=total,
                     chunks=len(parts))


def _with_timeline(app: ASGIApp) -> ASGIApp:
    """Marks where ``python -m bench timeline`` expects a server's request to start and end."""
    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        mark("baseline.http_in")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body":
                mark("baseline.http_out")
            await send(message)

        await app(scope, receive, sending)

    return marked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the OpenAI emulator's base URL (no /v1)")
    args = parser.parse_args(argv)
    key = os.environ.get("BENCH_UPSTREAM_KEY", "")
    if not key:
        print("bench.baseline_server: BENCH_UPSTREAM_KEY is not set", file=sys.stderr)
        return 2
    app = build_server(Upstream(args.upstream, key)).streamable_http_app(host="127.0.0.1")
    app.router.routes.append(Route("/healthz", _healthz, methods=["GET"]))
    # uvicorn re-raises SIGTERM after its graceful shutdown; with a no-op handler there the
    # process exits normally instead, so exit handlers (the timeline's marks) still run.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # Same uvicorn settings as the gateway: no access log, default loop and HTTP parser.
    uvicorn.run(_with_timeline(app) if timeline_enabled() else app, host="127.0.0.1", port=args.port,
                log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

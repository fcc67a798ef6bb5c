"""Embed a few texts with the `embed` tool and print each vector's size and first values.

Run: LLMC_URL=http://127.0.0.1:8765/mcp LLMC_TOKEN=llmc_... python embed.py "first text" "second text"
"""

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(texts: list[str]) -> int:
    url = os.environ.get("LLMC_URL", "http://127.0.0.1:8765/mcp")
    token = os.environ["LLMC_TOKEN"]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("embed", {"input": texts})
    reply = result.structured_content or {}
    if result.is_error:
        error = reply.get("error", {})
        print(f"embed failed ({error.get('type')}): {error.get('message')}", file=sys.stderr)
        return 1
    for text, vector in zip(texts, reply["vectors"], strict=True):
        print(f"{text!r}: {reply['dimensions']} dimensions, starts {vector[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ["hello", "world"])))

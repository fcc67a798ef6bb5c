"""Ask one question with the `chat` tool and print the answer.

Run: LLMC_URL=http://127.0.0.1:8765/mcp LLMC_TOKEN=llmc_... python chat.py "What is 2+2?"
"""

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main(prompt: str) -> int:
    url = os.environ.get("LLMC_URL", "http://127.0.0.1:8765/mcp")
    token = os.environ["LLMC_TOKEN"]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("chat", {"prompt": prompt})
    reply = result.structured_content or {}
    if result.is_error:
        error = reply.get("error", {})
        print(f"chat failed ({error.get('type')}): {error.get('message')}", file=sys.stderr)
        return 1
    print(reply["text"])
    print(f"-- {reply['provider']}/{reply['model']}, {reply['latency_ms']} ms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "Say hello in five words.")))

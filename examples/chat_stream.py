"""Stream an answer with `chatStream`: each text delta is printed the moment it arrives.

MCP has no streamed tool results, so the gateway sends each delta as a progress
notification; the SDK hands them to `progress_callback`. The final result has the whole text.

Run: LLMC_URL=http://127.0.0.1:8765/mcp LLMC_TOKEN=llmc_... python chat_stream.py "Tell me a story"
"""

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def print_delta(progress: float, total: float | None, message: str | None) -> None:
    print(message or "", end="", flush=True)


async def main(prompt: str) -> int:
    url = os.environ.get("LLMC_URL", "http://127.0.0.1:8765/mcp")
    token = os.environ["LLMC_TOKEN"]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("chatStream", {"prompt": prompt}, progress_callback=print_delta)
    print()
    reply = result.structured_content or {}
    if result.is_error:
        error = reply.get("error", {})
        print(f"chatStream failed ({error.get('type')}): {error.get('message')}", file=sys.stderr)
        if error.get("partial_text"):
            print(f"text received before the failure: {error['partial_text']!r}", file=sys.stderr)
        return 1
    print(f"-- {reply['chunks']} deltas from {reply['provider']}/{reply['model']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or "Tell me a short story.")))

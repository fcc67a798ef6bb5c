"""Handle the three ways a call can fail: a tool error, a protocol error, no gateway.

1. A tool error: the call reached the gateway and failed (unknown model, provider down,
   rate limited...). `result.is_error` is true and `structured_content["error"]` says
   `type`, `message`, `retryable` and `retry_after_s`. Retry only what is retryable.
2. A protocol error: the request itself was refused (wrong token, unknown tool). The SDK
   raises `MCPError` (inside an exception group); its `.error.message` is the gateway's reason.
3. No gateway at that address: the SDK raises `httpx2.ConnectError`.

Run: LLMC_URL=http://127.0.0.1:8765/mcp LLMC_TOKEN=llmc_... python errors.py [MODEL]
"""

import asyncio
import os
import sys
from typing import Any

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client


async def chat_with_retries(client: Client, arguments: dict[str, Any], attempts: int = 3) -> dict[str, Any]:
    """Call `chat`; wait and try again while the error says it is retryable."""
    for attempt in range(1, attempts + 1):
        result = await client.call_tool("chat", arguments)
        reply = result.structured_content or {}
        if not result.is_error:
            return reply
        error = reply["error"]
        print(f"attempt {attempt}: {error['type']}: {error['message']}", file=sys.stderr)
        if not error["retryable"] or attempt == attempts:
            raise RuntimeError(f"chat failed: {error['type']}")
        await asyncio.sleep(error["retry_after_s"] or 1.0)
    raise AssertionError("unreachable")


async def main(model: str | None) -> int:
    url = os.environ.get("LLMC_URL", "http://127.0.0.1:8765/mcp")
    token = os.environ["LLMC_TOKEN"]
    arguments: dict[str, Any] = {"prompt": "Say hello."}
    if model:
        arguments["model"] = model
    headers = {"Authorization": f"Bearer {token}"}
    code = 0
    try:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            reply = await chat_with_retries(client, arguments)
            print(reply["text"])
    except* MCPError as group:
        for exc in group.exceptions:
            print(f"refused by the gateway: {exc}", file=sys.stderr)  # str(MCPError) is the server's message
        code = 2
    except* httpx2.ConnectError:
        print(f"no gateway answers at {url}; is the stack running (llm-caller status)?", file=sys.stderr)
        code = 3
    except* RuntimeError as group:
        print(group.exceptions[0], file=sys.stderr)
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None)))

"""What the HTTP gateway and its STDIO front end agree on: the transport header and the tool-error shape.

The STDIO front end (package ``stdio_front``) is a process of its own that talks to the
gateway over HTTP, so neither imports the other; what both must spell the same way lives
here. ``TRANSPORT_HEADER`` names the transport a session token is bound to (the front end
sends ``stdio``; the gateway's guard reads it). ``error_result`` is the one MCP tool-error
result both answer with: the taxonomy payload in ``structured_content`` plus a readable
line, never a traceback or a secret.

Only the gateway side and the front end import this module (it loads the MCP types); the
workers never do.
"""

from __future__ import annotations

from mcp_types import CallToolResult, TextContent

from shared import errors

__all__ = ["TRANSPORT_HEADER", "error_result"]

TRANSPORT_HEADER = "x-llmc-transport"


def error_result(exc: errors.LLMCallerError) -> CallToolResult:
    """The MCP tool error (``isError``) for ``exc``: ``{"error": payload}`` and a one-line text."""
    payload = exc.to_payload()
    hint = ""
    if exc.retryable:
        hint = f" (retryable, after {exc.retry_after_s:g}s)" if exc.retry_after_s else " (retryable)"
    text = f"{exc.type}: {exc.message}{hint}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content={"error": payload}, is_error=True
    )

"""The STDIO front end: a process of its own that serves the MCP tools over STDIO via the HTTP gateway.

``llm-caller stdio`` runs ``stdio_front.front.main``. The front end talks to the gateway
only over HTTP, as an MCP client; it imports ``shared`` and never the gateway's (or a
worker's) code, so it loads neither's dependencies (checked by tests/unit/test_layering.py).
"""

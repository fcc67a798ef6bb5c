"""The MCP tools' names: the one place a tool's name is written.

Both sides of the project need the names: the client registry (``shared.config``)
checks a client's ``tools`` grant against them and ``llm-caller clients --tools`` lists
them, while the gateway serves them. Shared code may not import the gateway, so the bare
names live here and the gateway's table (``gateway.tool_table``) attaches each tool's
description, schemas, capability and handler to them, in this order. That order is the
order of ``tools/list``.

A new tool: add its name to ``ToolName`` (and a constant below it) and its entry to
``gateway.tool_table``.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["CHAT", "CHAT_STREAM", "EMBED", "GET_HEALTH", "LIST_MODELS", "THREADS", "TOOL_NAMES", "ToolGrant",
           "ToolName", "describe_tools"]

ToolName = Literal["chat", "chatStream", "embed", "getHealth", "listModels", "threads"]
TOOL_NAMES: tuple[ToolName, ...] = get_args(ToolName)
# For code that calls a tool by name (demo, sandbox): the same names, never spelled again.
CHAT, CHAT_STREAM, EMBED, GET_HEALTH, LIST_MODELS, THREADS = TOOL_NAMES
# What a client registry entry may be granted: a tool, or "*" for all of them.
ToolGrant = Literal["*", ToolName]


def describe_tools(names: tuple[str, ...] = TOOL_NAMES) -> str:
    """The tools in prose, for server instructions and help: ``a, b, c and d``."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"

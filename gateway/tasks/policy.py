"""Whether one ``tools/call`` becomes a task: the server decides, per request (the extension's rule).

Never for a request that did not declare the extension in its own ``_meta`` client
capabilities, nor on a pre-2026 protocol (the extension exists only for 2026-07-28). For one
that did, a call of a tool that calls a provider (``chat``, ``chatStream``, ``embed``: the
tool table's ``calls_provider``) becomes a task when:

- the request's ``_meta`` carries our hint ``llm-caller/task: true`` (the spec has no way for a
  client to ask, so this is ours), or
- the call may run longer than ``task_after_s``: its own ``timeout_s`` (else its provider's
  configured total timeout) passes it, or (chat) it asks for reasoning, or its
  ``max_tokens`` at an assumed 50 tokens a second would take longer than that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from gateway.tasks.wire import EXTENSION, HINT_KEY

__all__ = ["asked_for_task", "declared", "wants_task"]

# A deliberately slow assumed output rate: a long answer is a task rather than a timeout.
_TOKENS_PER_S = 50.0

# (provider name or None) -> the timeout a call without ``timeout_s`` gets
DefaultTimeout = Callable[[str | None], float]


def declared(protocol_version: str, capabilities: Any) -> bool:
    """True when this request's client capabilities list the extension (2026 protocol only)."""
    if protocol_version not in MODERN_PROTOCOL_VERSIONS or capabilities is None:
        return False
    extensions = getattr(capabilities, "extensions", None)
    return isinstance(extensions, Mapping) and EXTENSION in extensions


def asked_for_task(meta: Mapping[str, Any] | None) -> bool:
    """The request's ``_meta`` carries our hint: a task at once, without the inline window."""
    return meta is not None and meta.get(HINT_KEY) is True


def wants_task(args: BaseModel, meta: Mapping[str, Any] | None, after_s: float,
               default_timeout: DefaultTimeout) -> bool:
    """Given a declaring client and a provider-calling tool: should this call be answered with a task?"""
    if asked_for_task(meta):
        return True
    timeout = getattr(args, "timeout_s", None) or default_timeout(getattr(args, "provider", None))
    if timeout > after_s:
        return True
    if getattr(args, "reasoning", None) is not None:
        return True
    max_tokens = getattr(args, "max_tokens", None)
    return max_tokens is not None and max_tokens / _TOKENS_PER_S > after_s

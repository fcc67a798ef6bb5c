"""Shared by the front-end security tests: a sandbox with chosen security settings, raw MCP requests, audit."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from cli.stack import Stack
from harness.sandbox import Sandbox
from shared.files import write_json_atomic
from shared.settings import SecuritySettings
from shared.tokens import hash_token, new_token
from tests.polling import wait_until

ERAS = ("2025-11-25", "2026-07-28")
_INIT_PARAMS = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}


@contextlib.contextmanager
def sandbox_with(security: SecuritySettings, **options: Any) -> Iterator[Sandbox]:
    """A Sandbox whose gateway runs with ``security``; it reaches the gateway as LLMC_* variables,
    exactly as an operator's `llm-caller up` hands them over."""
    original = Stack.start

    def start(self: Stack, **kwargs: Any) -> None:
        self.settings = dataclasses.replace(self.settings, security=security)
        original(self, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Stack, "start", start)
        box = Sandbox(**options).__enter__()
    try:
        yield box
    finally:
        box.__exit__(None, None, None)


def base_url(box: Sandbox) -> str:
    return box.url.removesuffix("/mcp")


def add_clients(box: Sandbox, **entries: dict[str, Any]) -> dict[str, str]:
    """Register more clients next to "demo"; returns their new tokens once the gateway has re-read the file."""
    registry_file = box.stack.settings.registry_file
    registry = orjson.loads(registry_file.read_bytes())
    tokens = {name: new_token() for name in entries}
    for name, extra in entries.items():
        registry["clients"][name] = {"token_sha256": hash_token(tokens[name]), **extra}
    since = now_iso()
    write_json_atomic(registry_file, registry, mode=0o600)
    wait_registry_reloaded(box, since)
    return tokens


def now_iso() -> str:
    """The time now as log lines and audit events write it (UTC, milliseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def wait_registry_reloaded(box: Sandbox, since: str) -> None:
    """Until the gateway has re-read its client registry at or after ``since`` (taken before the change).

    The gateway looks at the file when it checks a credential, at most once a second: keep
    presenting the demo client's token until the gateway's log says it reloaded.
    """
    def reloaded() -> bool:
        post(box, ERAS[1], box.token)
        return any(ts >= since for ts in _event_times(box, "registry_reloaded"))

    wait_until(reloaded, 10, "the gateway re-read the client registry", interval_s=0.1)


def _event_times(box: Sandbox, event: str) -> list[str]:
    """The times of the gateway's log lines for ``event``, in its log and the rotated ones."""
    marker = event.encode()
    lines = [line for path in box.log_dir.glob("gateway.log*") for line in path.read_bytes().splitlines()
             if marker in line and line.startswith(b"{")]
    return [str(record["ts"]) for record in map(orjson.loads, lines) if record.get("event") == event]


def mcp_headers(era: str, token: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": era, **extra}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def list_tools_request(era: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A minimal valid first request of each era, and the routing headers it needs."""
    if era == "2025-11-25":
        return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": _INIT_PARAMS}, {}
    meta = {"io.modelcontextprotocol/protocolVersion": era, "io.modelcontextprotocol/clientInfo":
            {"name": "t", "version": "1"}, "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}, {"Mcp-Method": "tools/list"}


def post(box: Sandbox, era: str, token: str | None, body: bytes | dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    """POST to /mcp; without ``body``, the era's minimal valid first request."""
    payload, routing = list_tools_request(era)
    content = body if isinstance(body, bytes) else orjson.dumps(body if body is not None else payload)
    return httpx.post(box.url, content=content, headers=mcp_headers(era, token, **routing, **(headers or {})),
                      timeout=30)


def audit_events(box: Sandbox, event: str | None = None) -> list[dict[str, Any]]:
    path = box.log_dir / "audit.jsonl"
    if not path.exists():
        return []
    events = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [e for e in events if event is None or e["event"] == event]

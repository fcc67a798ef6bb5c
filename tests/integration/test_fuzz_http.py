"""Random JSON-RPC bodies and headers at the real HTTP surface: always a well-formed answer, never a 5xx.

Hypothesis draws a body (valid-looking JSON-RPC with random fields, arbitrary JSON, or raw
bytes) and headers (protocol version, routing headers, Accept, Content-Type, credential,
session id, Host, Origin). Every response must be a JSON-RPC message, an OAuth-style error
object, an SSE stream of JSON-RPC messages, or a short plain-text HTTP refusal; and after
all of it the gateway must still answer a real SDK client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.sandbox import Sandbox
from shared.settings import SecuritySettings
from tests.integration.conftest import run
from tests.integration.security_helpers import sandbox_with

pytestmark = pytest.mark.integration

# Lockout would turn later examples into 429s; the fuzzer is after crashes, not brute force.
SECURITY = SecuritySettings(lockout_threshold=100_000, max_body_bytes=64 * 1024)
_PLAIN_REFUSALS = {400, 403, 404, 405, 406, 413, 415, 421}
_BUDGET_S = 30.0

_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_methods = st.sampled_from(["initialize", "tools/list", "tools/call", "server/discover", "ping",
                            "notifications/initialized", "notifications/cancelled", "resources/list",
                            "subscriptions/listen", "nope"]) | st.text(max_size=12)
_tool_calls = st.fixed_dictionaries({
    "name": st.sampled_from(["chat", "chatStream", "embed", "getHealth", "deleteEverything"]) | st.text(max_size=8),
    "arguments": st.sampled_from([{"prompt": "hi"}, {"input": "x"}, {}, {"prompt": "hi", "provider": "lmstudio"}])
    | st.dictionaries(st.sampled_from(["prompt", "messages", "input", "provider", "model", "max_tokens",
                                       "temperature", "timeout_s", "system", "x"]), _json, max_size=4),
})
_meta = st.fixed_dictionaries({}, optional={
    "io.modelcontextprotocol/protocolVersion": st.sampled_from(["2026-07-28", "2025-11-25", "1999-01-01"]),
    "io.modelcontextprotocol/clientInfo": st.just({"name": "fuzz", "version": "0"}) | _json,
    "io.modelcontextprotocol/clientCapabilities": st.just({}) | _json,
    "progressToken": st.integers(0, 9) | st.text(max_size=4),
})
_params = st.one_of(st.none(), _json, _tool_calls,
                    st.builds(lambda call, meta: {**call, "_meta": meta}, _tool_calls, _meta))
_envelopes = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.sampled_from(["2.0", "1.0"]) | _scalars,
    "id": st.integers(-5, 2**40) | st.text(max_size=6) | _json,
    "method": _methods,
    "params": _params,
    "result": _json,
    "error": _json,
})


def _dump(value: Any) -> bytes:
    return json.dumps(value).encode()  # the stdlib, unlike orjson, writes integers beyond 64 bits


_bodies = st.one_of(
    _envelopes.map(_dump),
    _json.map(_dump),
    st.binary(max_size=200),
    st.builds(lambda depth, opener: opener * depth, st.integers(1, 3000), st.sampled_from([b"[", b'{"a":'])),
)


def _header_safe(value: str) -> bool:
    """What an HTTP client can put on the wire: visible Latin-1, no outer spaces (h11 refuses the rest)."""
    return (bool(value) and value == value.strip(" ")
            and all(0x21 <= ord(c) <= 0x7E or 0xA0 <= ord(c) <= 0xFF or c == " " for c in value))


def _headers(token: str, port: int) -> st.SearchStrategy[dict[str, str]]:
    own = f"127.0.0.1:{port}"
    return st.fixed_dictionaries({
        "Authorization": st.sampled_from([f"Bearer {token}"] * 4 + ["Bearer llmc_wrong", "Bearer llmcs_x.y",
                                                                     "Basic Zm9v", "Bearer", ""]),
        "Host": st.sampled_from([own] * 8 + ["evil.example", f"localhost:{port}", "127.0.0.1"]),
    }, optional={
        "MCP-Protocol-Version": st.sampled_from(["2026-07-28", "2025-11-25", "2024-11-05", "9999-99-99", ""]),
        "Mcp-Method": _methods.map(str.strip).filter(_header_safe),
        "Mcp-Name": st.sampled_from(["chat", "getHealth", "x"]),
        "Accept": st.sampled_from(["application/json, text/event-stream", "application/json", "text/html", "*/*"]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"]),
        "Mcp-Session-Id": st.sampled_from(["abc", "0" * 32]),
        "Origin": st.sampled_from([f"http://{own}", "http://evil.example", "null"]),
    })


_MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {}}


def _well_shaped(token: str, port: int) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    """Correctly framed 2026-07-28 tools/call requests with random arguments: the served path, fuzzed."""
    def build(call: dict[str, Any], request_id: int) -> tuple[bytes, dict[str, str]]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {**call, "_meta": _MODERN_META}}
        headers = {"Authorization": f"Bearer {token}", "Host": f"127.0.0.1:{port}",
                   "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                   "Mcp-Name": call["name"] if _header_safe(call["name"]) else "x",
                   "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        return _dump(body), headers

    return st.builds(build, _tool_calls, st.integers(1, 10_000))


def _check_well_formed(response: httpx.Response) -> None:
    status, kind, text = response.status_code, response.headers.get("content-type", ""), response.text
    assert status < 500, (status, text[:300])
    assert "Traceback" not in text
    if not response.content:
        assert status in {200, 202, *_PLAIN_REFUSALS}, status
    elif kind.startswith("application/json"):
        body = response.json()
        assert isinstance(body, dict), body
        if "jsonrpc" in body:
            assert body["jsonrpc"] == "2.0" and (("result" in body) != ("error" in body)), body
            if "error" in body:
                assert isinstance(body["error"]["code"], int) and isinstance(body["error"]["message"], str)
        else:
            assert isinstance(body.get("error"), str), body  # OAuth-style: 401, 429
    elif kind.startswith("text/event-stream"):
        for line in text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = orjson.loads(line[5:])
                assert message["jsonrpc"] == "2.0", message
    else:
        assert status in _PLAIN_REFUSALS and len(text) < 200, (status, kind, text[:200])


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with sandbox_with(SECURITY, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def test_random_requests_get_well_formed_answers(box: Sandbox) -> None:
    started = time.monotonic()
    port = box.stack.settings.port
    seen: set[int] = set()

    with httpx.Client(timeout=30) as http:
        @settings(max_examples=250, deadline=None, database=None, derandomize=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(request=st.tuples(_bodies, _headers(box.token, port)) | _well_shaped(box.token, port),
               method=st.sampled_from(["POST"] * 8 + ["GET", "DELETE"]))
        def probe(request: tuple[bytes, dict[str, str]], method: str) -> None:
            body, headers = request
            if time.monotonic() - started > _BUDGET_S:
                return  # keep the whole run bounded even on a slow machine
            clean = {k.encode(): v.encode("latin-1") for k, v in headers.items() if v}
            response = http.request(method, box.url, content=body, headers=clean)
            seen.add(response.status_code)
            _check_well_formed(response)

        probe()

    assert 200 in seen and len(seen) >= 4, seen  # the fuzzer reached both served and refused paths

    async def still_serving() -> Any:
        async with box.client() as client:
            return await client.call_tool("chat", {"prompt": "still fine?"})

    assert not run(still_serving()).is_error

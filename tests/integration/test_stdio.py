"""`llm-caller stdio` as an MCP client launches it: same tools, same checks, through the running gateway."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from shared.files import write_json_atomic
from shared.tool_names import TOOL_NAMES
from tests.integration.conftest import run
from tests.integration.security_helpers import add_clients, audit_events, base_url, now_iso, wait_registry_reloaded

pytestmark = pytest.mark.integration

# `python -m` from this checkout, so the code under test is this tree's even where the
# venv's `llm-caller` entry point was installed from another checkout.
COMMAND = [sys.executable, "-m", "cli.main", "stdio"]
ERA_MODES = ["legacy", "auto"]  # the STDIO client's first message picks 2025-11-25 or 2026-07-28


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.02, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(scope="module")
def tokens(box: Sandbox) -> dict[str, str]:
    return add_clients(box, off={"disabled": True}, narrow={"tools": ["getHealth"]})


def _env(box: Sandbox, token: str | None) -> dict[str, str]:
    env = {"LLMC_GATEWAY_URL": base_url(box)}
    if token is not None:
        env["LLMC_TOKEN"] = token
    return env


@asynccontextmanager
async def stdio_front(box: Sandbox, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    params = StdioServerParameters(command=COMMAND[0], args=COMMAND[1:], env=_env(box, token), cwd=REPO_ROOT)
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode) as client:
            yield client


def _launch(box: Sandbox, token: str | None, **extra: str) -> subprocess.CompletedProcess[bytes]:
    """Start the front end the way an MCP client does, with nothing on stdin yet."""
    env = {"PATH": os.environ["PATH"], **_env(box, token), **extra}
    return subprocess.run(COMMAND, env=env, cwd=REPO_ROOT, input=b"", capture_output=True, timeout=30)


@pytest.mark.parametrize("mode", ERA_MODES)
def test_the_four_tools_over_stdio(box: Sandbox, mode: str) -> None:
    async def scenario() -> None:
        deltas: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            deltas.append(message or "")

        async with stdio_front(box, box.token, mode) as client:
            listed = await client.list_tools()
            chat = await client.call_tool("chat", {"prompt": "hello over stdio", "provider": "anthropic"})
            stream = await client.call_tool("chatStream", {"prompt": "tell me about streams"},
                                            progress_callback=on_progress)
            embed = await client.call_tool("embed", {"input": ["a", "b"]})
            health = await client.call_tool("getHealth", {})
            bad = await client.call_tool("chat", {"prompt": 42})
        assert sorted(t.name for t in listed.tools) == sorted(TOOL_NAMES)
        assert not chat.is_error and chat.structured_content is not None
        assert chat.structured_content["provider"] == "anthropic"
        assert not stream.is_error and stream.structured_content is not None
        assert len(deltas) >= 3 and "".join(deltas) == stream.structured_content["text"]
        assert not embed.is_error and embed.structured_content is not None
        assert len(embed.structured_content["vectors"]) == 2
        assert not health.is_error
        assert bad.is_error and bad.structured_content is not None
        assert bad.structured_content["error"]["type"] == "invalid_request"

    run(scenario())


def test_progress_arrives_while_the_stream_runs(box: Sandbox) -> None:
    async def scenario() -> list[float]:
        arrivals: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            arrivals.append(time.monotonic())

        async with stdio_front(box, box.token) as client:
            await client.call_tool("chatStream", {"prompt": "a long answer please"}, progress_callback=on_progress)
            done = time.monotonic()
        return [done - moment for moment in arrivals]

    before_end = run(scenario())
    # Relayed as they come (the emulator paces chunks 20 ms apart), not in a burst at the end.
    assert len(before_end) >= 3 and before_end[0] > 0.04


def test_notifications_count_what_reached_the_stdio_client(box: Sandbox) -> None:
    async def scenario() -> tuple[int, Any, Any]:
        deltas: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            deltas.append(message or "")

        async with stdio_front(box, box.token) as client:
            with_token = await client.call_tool("chatStream", {"prompt": "count me"}, progress_callback=on_progress)
            without = await client.call_tool("chatStream", {"prompt": "count me"})
        return len(deltas), with_token.structured_content, without.structured_content

    received, with_token, without = run(scenario())
    assert received >= 3 and with_token["chunks"] == with_token["notifications"] == received
    assert without["chunks"] >= 3 and without["notifications"] == 0


def test_the_gateway_enforces_the_clients_rights(box: Sandbox, tokens: dict[str, str]) -> None:
    async def scenario() -> Any:
        async with stdio_front(box, tokens["narrow"]) as client:
            return await client.call_tool("chat", {"prompt": "x"})

    refused = run(scenario())
    assert refused.is_error and refused.structured_content["error"]["type"] == "permission"


def test_unknown_tool_is_the_gateways_protocol_error(box: Sandbox) -> None:
    async def scenario() -> str:
        async with stdio_front(box, box.token) as client:
            try:
                await client.call_tool("deleteEverything", {})
            except Exception as exc:
                return str(exc)
        return "no error"

    assert "unknown tool 'deleteEverything'" in run(scenario())


def test_a_stdio_session_token_is_accepted_directly(box: Sandbox) -> None:
    response = httpx.post(f"{base_url(box)}/session", json={"transport": "stdio", "ttl_s": 300},
                          headers={"Authorization": f"Bearer {box.token}"})
    session = response.json()["session_token"]

    async def scenario() -> bool:
        async with stdio_front(box, session) as client:
            return (await client.call_tool("getHealth", {})).is_error

    assert run(scenario()) is False


def test_the_transport_is_audited(box: Sandbox) -> None:
    async def scenario() -> None:
        async with stdio_front(box, box.token) as client:
            await client.call_tool("getHealth", {})

    run(scenario())
    issued = [e for e in audit_events(box, "session_token_issued") if e["transport"] == "stdio"]
    connected = [e for e in audit_events(box, "client_connected") if e["transport"] == "stdio"]
    assert issued and issued[-1]["client"] == "demo"
    assert any(e["credential"] == "session_token" for e in connected)


@pytest.mark.parametrize(("token", "says"), [
    (None, b"LLMC_TOKEN is not set"),
    ("", b"LLMC_TOKEN is not set"),
    ("llmc_not-a-real-token", b"the token is not valid"),
    ("sk-my-provider-key-by-mistake", b"not an LLM Caller token"),
    ("llmcs_forged.AAAA", b"malformed"),
])
def test_a_bad_token_exits_2_with_one_clear_line(box: Sandbox, token: str | None, says: bytes) -> None:
    done = _launch(box, token)
    assert done.returncode == 2 and done.stdout == b""
    assert says in done.stderr and done.stderr.startswith(b"llm-caller stdio: ")
    assert b"Traceback" not in done.stderr and done.stderr.count(b"\n") == 1
    if token:
        assert token.encode() not in done.stderr


def test_a_disabled_client_or_wrong_session_binding_exits_2(box: Sandbox, tokens: dict[str, str]) -> None:
    disabled = _launch(box, tokens["off"])
    assert disabled.returncode == 2 and b"disabled" in disabled.stderr and disabled.stdout == b""
    http_only = httpx.post(f"{base_url(box)}/session", json={"transport": "http"},
                           headers={"Authorization": f"Bearer {box.token}"}).json()["session_token"]
    rebound = _launch(box, http_only)
    assert rebound.returncode == 2 and b"bound to http, not stdio" in rebound.stderr and rebound.stdout == b""


def test_gateway_url_must_stay_on_this_machine(box: Sandbox) -> None:
    done = _launch(box, box.token, LLMC_GATEWAY_URL="http://192.0.2.1:8765")
    assert done.returncode == 2 and b"LLMC_GATEWAY_URL" in done.stderr and done.stdout == b""


def test_no_gateway_exits_1(box: Sandbox) -> None:
    done = _launch(box, box.token, LLMC_GATEWAY_URL="http://127.0.0.1:9")
    assert done.returncode == 1 and b"cannot reach the gateway" in done.stderr and done.stdout == b""


def test_closing_stdin_ends_the_front_end_cleanly(box: Sandbox) -> None:
    done = _launch(box, box.token)
    assert done.returncode == 0 and done.stdout == b"" and b"Traceback" not in done.stderr


def test_a_client_disabled_mid_run_gets_an_auth_error(box: Sandbox) -> None:
    token = add_clients(box, fickle={})["fickle"]

    async def scenario() -> list[Any]:
        async with stdio_front(box, token) as client:
            before = await client.call_tool("getHealth", {})
            registry_file = box.stack.settings.registry_file
            registry = orjson.loads(registry_file.read_bytes())
            registry["clients"]["fickle"]["disabled"] = True
            since = now_iso()
            write_json_atomic(registry_file, registry, mode=0o600)
            await asyncio.to_thread(wait_registry_reloaded, box, since)
            after = await client.call_tool("getHealth", {})
        return [before, after]

    before, after = run(scenario())
    assert not before.is_error
    assert after.is_error and after.structured_content["error"]["type"] == "auth"
    assert "disabled" in after.structured_content["error"]["message"]


def test_a_stopped_gateway_is_reported_at_once_and_the_next_call_reconnects(box: Sandbox) -> None:
    """The front end's one upstream client breaks with the gateway and is replaced on the next call."""
    async def scenario() -> tuple[Any, Any, float, Any]:
        async with stdio_front(box, box.token) as client:
            before = await client.call_tool("getHealth", {})
            box.stack.rpc().supervisor.stopProcess("gateway")
            started = time.monotonic()
            during = await client.call_tool("getHealth", {})
            took = time.monotonic() - started
            box.stack.rpc().supervisor.startProcess("gateway")
            box.stack.wait_ready()
            after = await client.call_tool("chat", {"prompt": "back again"})
        return before, during, took, after

    before, during, took, after = run(scenario())
    assert not before.is_error
    assert during.is_error and during.structured_content["error"]["type"] == "unavailable" and took < 10
    assert "is it running?" in during.structured_content["error"]["message"]
    assert not after.is_error and "back again" in after.structured_content["text"]


def test_survives_a_gateway_restart_with_a_new_session_key(box: Sandbox) -> None:
    """The front end renews its session token on a 401 and reconnects per call; run last (restarts the gateway)."""
    async def scenario() -> list[bool]:
        async with stdio_front(box, box.token) as client:
            before = (await client.call_tool("getHealth", {})).is_error
            box.stack.settings.session_key_file.unlink()  # the restarted gateway makes a new key
            box.stack.restart_worker("gateway")
            box.stack.wait_ready()
            after = (await client.call_tool("getHealth", {})).is_error
        return [before, after]

    assert run(scenario()) == [False, False]
    assert len([e for e in audit_events(box, "session_token_issued") if e["transport"] == "stdio"]) >= 2

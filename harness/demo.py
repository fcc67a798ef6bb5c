"""``make demo``: the whole stack against the emulators, driven by the official MCP client.

Starts supervisord (gateway + one worker per emulated provider kind) and the emulators, then calls every tool,
streams a reply chunk by chunk, restarts one worker with supervisorctl while the gateway
stays up, calls again, and stops everything. Exits 0 only if every step worked.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any, cast

from mcp import Client

from cli.stack import SUPERVISORD_CONF, scrubbed_environment
from harness.sandbox import Sandbox
from shared.config import KIND_CAPABILITIES, ProvidersFile
from shared.models import Capability
from shared.tool_names import CHAT, CHAT_STREAM, EMBED, GET_HEALTH


def _say(text: str) -> None:
    print(text, flush=True)


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def _check(result: Any, what: str) -> dict[str, Any]:
    if result.is_error:
        raise RuntimeError(f"{what} failed: {_text(result)}")
    data: dict[str, Any] = result.structured_content or {}
    return data


async def _health(client: Client) -> None:
    health = _check(await client.call_tool(GET_HEALTH, {}), GET_HEALTH)
    _say(f"  gateway status: {health['status']}, version {health['version']}")
    for worker in health["workers"]:
        models = ", ".join(m["id"] for m in worker["models"]) or "-"
        _say(f"  {worker['provider']:<10} up={worker['up']!s:<5} status={worker['status']:<12} models: {models}")


def _able(config: ProvidersFile, capability: str, *, able: bool = True) -> list[str]:
    """The sandbox's providers whose kind can (or, with ``able=False``, cannot) do ``capability``."""
    return [name for name, p in config.providers.items() if (capability in KIND_CAPABILITIES[p.kind]) == able]


async def _chats(client: Client, config: ProvidersFile) -> None:
    for provider in config.providers:
        reply = _check(await client.call_tool(CHAT, {"prompt": "What is 2+2?", "provider": provider}), CHAT)
        _say(f"  chat via {provider}/{reply['model']}: {reply['text']!r} "
             f"({reply['usage']['total_tokens']} tokens, {reply['latency_ms']:.1f} ms)")


async def _stream(client: Client, provider: str) -> None:
    _say(f"  chatStream via {provider}, chunks as they arrive:")
    print("    ", end="", flush=True)
    arrivals: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append(time.perf_counter())
        print(f"[{message}]", end="", flush=True)

    result = await client.call_tool(
        CHAT_STREAM, {"prompt": "Tell me a short story", "provider": provider}, progress_callback=on_progress
    )
    print()
    reply = _check(result, CHAT_STREAM)
    span = (arrivals[-1] - arrivals[0]) * 1000 if len(arrivals) > 1 else 0.0
    _say(f"  {len(arrivals)} progress notifications over {span:.0f} ms; final text: {reply['text']!r}")
    if len(arrivals) < 2:
        raise RuntimeError("chatStream sent fewer than two progress notifications")


async def _embeds(client: Client, config: ProvidersFile) -> None:
    for provider in _able(config, EMBED):
        reply = _check(await client.call_tool(EMBED, {"input": ["hello", "world"], "provider": provider}), EMBED)
        _say(f"  embed via {provider}/{reply['model']}: {len(reply['vectors'])} vectors x {reply['dimensions']} dims")
    for provider in _able(config, EMBED, able=False):
        refused = await client.call_tool(EMBED, {"input": "hello", "provider": provider})
        _say(f"  embed via {provider} is refused clearly: {_text(refused)!r}")


def _restart(box: Sandbox, provider: str) -> None:
    env = scrubbed_environment(box.stack.settings)
    command = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(SUPERVISORD_CONF),
               "restart", f"worker-{provider}"]
    started = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    _say(f"  $ supervisorctl restart worker-{provider}  ({(time.perf_counter() - started) * 1000:.0f} ms)")
    for line in out.strip().splitlines():
        _say(f"    {line}")


async def _session(box: Sandbox) -> None:
    config = box.providers
    default = config.defaults[cast(Capability, CHAT)].provider  # the tool's name is its capability's
    async with box.client() as client:
        _say("\n1. getHealth")
        await _health(client)
        _say("\n2. chat through each provider's worker")
        await _chats(client, config)
        _say("\n3. chatStream through each provider that streams (each wire format streams its own way)")
        for streamer in _able(config, CHAT_STREAM):
            await _stream(client, streamer)
        _say("\n4. embed")
        await _embeds(client, config)
        _say(f"\n5. restart the {default} worker while the gateway stays up")
        _restart(box, default)
        started = time.perf_counter()
        reply = _check(await client.call_tool(CHAT, {"prompt": "Are you back?", "provider": default}), CHAT)
        _say(f"  next chat answered in {(time.perf_counter() - started) * 1000:.0f} ms: {reply['text']!r}")
        health = _check(await client.call_tool(GET_HEALTH, {}), GET_HEALTH)
        seen = {w["provider"]: w["restarts_seen"] for w in health["workers"]}
        _say(f"  gateway saw restarts: {seen}")


def run_demo() -> int:
    started = time.perf_counter()
    try:
        with Sandbox(chunk_delay_s=0.05, run_providers="all") as box:
            _say(f"LLM Caller demo: supervisord + gateway + {len(box.providers.providers)} workers "
                 "(every provider kind), providers emulated on 127.0.0.1")
            _say(f"stack up in {time.perf_counter() - started:.1f}s; MCP endpoint {box.url}")
            box.wait_workers_up()
            asyncio.run(_session(box))
            _say("\n6. stopping everything")
    except Exception as exc:
        _say(f"\ndemo FAILED: {exc}")
        return 1
    _say(f"demo OK in {time.perf_counter() - started:.1f}s")
    return 0

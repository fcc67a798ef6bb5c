"""The ``ollama`` kind through the real stack (supervisord, gateway, workers, the Ollama emulator)
with the official MCP client: chat, chatStream, embed, discovery, the error map and faults.

Three providers of the kind: ``ollama`` discovers its models; ``ollama-pinned`` names its
models in config (one not pulled, one that cannot chat) and sends a key, as for a reverse
proxy; ``ollama-down`` points at a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators.ollama_api import DEFAULT_MODELS
from harness.sandbox import Sandbox, free_port
from tests.integration.conftest import inject, run

pytestmark = pytest.mark.integration

GREETING = "Hello from the Ollama emulator. You said: "
CHAT_MODEL, EMBED_MODEL, IDLE_MODEL, FEATURE_MODEL = (m.name for m in DEFAULT_MODELS)
NOT_PULLED = "llama3.3:70b"
PROXY_KEY = "sk-proxy-0llama-7e1f0c2d9a8b4c6e"
_DOWN_URL = f"http://127.0.0.1:{free_port()}"


def _tuner(key_file: Path) -> Any:
    def tune(config: dict[str, Any]) -> None:
        ollama = config["providers"]["ollama"]
        ollama["retry"] = {"base_delay_s": 0.01, "max_delay_s": 0.05}
        pinned = {**ollama, "discover_models": False, "secret": {"file": str(key_file)}, "models": [
            {"id": NOT_PULLED, "capabilities": ["chat", "chatStream"]},
            {"id": EMBED_MODEL, "capabilities": ["chat"]},  # an operator's mistake: it only embeds
        ]}
        down = {**ollama, "base_url": _DOWN_URL, "discovery_interval_s": 30,
                "circuit": {"unreachable_after": 3, "probe_interval_s": 0.5}}
        config["providers"] |= {"ollama-pinned": pinned, "ollama-down": down}
    return tune


@pytest.fixture(scope="module")
def obox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    key_file = tmp_path_factory.mktemp("ollama-key") / "proxy.key"
    key_file.write_text(PROXY_KEY)
    key_file.chmod(0o600)
    with Sandbox(run_providers=("ollama",), chunk_delay_s=0.02, heartbeat_s=0.25,
                 tweak=_tuner(key_file)) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(autouse=True)
def _clean(obox: Sandbox) -> None:
    url = obox.emulators.url("ollama")
    httpx.delete(f"{url}/_emulator/faults").raise_for_status()
    httpx.delete(f"{url}/_emulator/stats").raise_for_status()


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with box.client() as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    return result.structured_content


async def _stream(box: Sandbox, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    deltas: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        deltas.append(message or "")

    async with box.client() as client:
        result = await client.call_tool("chatStream", arguments, progress_callback=on_progress)
    assert result.structured_content is not None
    return result.structured_content, deltas


async def _worker(box: Sandbox, provider: str, want: Any, timeout_s: float) -> dict[str, Any]:
    """Poll getHealth until ``provider``'s worker satisfies ``want``."""
    started = time.monotonic()
    async with box.client() as client:
        while True:
            health = (await client.call_tool("getHealth", {})).structured_content or {}
            worker = next(w for w in health["workers"] if w["provider"] == provider)
            if want(worker):
                return worker
            assert time.monotonic() - started < timeout_s, f"not reached in {timeout_s}s: {worker}"
            await asyncio.sleep(0.1)


def _requests(box: Sandbox, path: str) -> int:
    stats = httpx.get(f"{box.emulators.url('ollama')}/_emulator/stats").json()
    return int(stats["by_path"].get(path, 0))


def test_chat(obox: Sandbox) -> None:
    out = run(_call(obox, "chat", {"messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "ping pong"}],
                                   "provider": "ollama", "model": CHAT_MODEL, "max_tokens": 50}))
    assert out["text"] == GREETING + "ping pong", out
    assert out["provider"] == "ollama" and out["model"] == CHAT_MODEL and out["finish_reason"] == "stop"
    assert out["usage"]["input_tokens"] == 12 and out["usage"]["output_tokens"] == 9


def test_chat_max_tokens_is_num_predict(obox: Sandbox) -> None:
    out = run(_call(obox, "chat", {"prompt": "ping", "provider": "ollama", "max_tokens": 2}))
    assert out["text"] == "Hello from" and out["finish_reason"] == "length", out


def test_chat_stream_sends_each_line_as_progress(obox: Sandbox) -> None:
    out, deltas = run(_stream(obox, {"prompt": "tell me about streams", "provider": "ollama"}))
    assert "error" not in out, out
    assert out["text"] == GREETING + "tell me about streams" == "".join(deltas)
    assert out["chunks"] == len(deltas) == out["notifications"] == 11
    assert out["usage"]["output_tokens"] == 11


def test_embed_without_a_model_uses_the_servers_embedding_model(obox: Sandbox) -> None:
    out = run(_call(obox, "embed", {"input": ["first", "second", "first"], "provider": "ollama"}))
    assert out["model"] == EMBED_MODEL, out  # named without "embed": /api/show said so
    vectors = out["vectors"]
    assert len(vectors) == 3 and vectors[0] == vectors[2] != vectors[1]


def test_health_says_where_capabilities_came_from(obox: Sandbox) -> None:
    worker = run(_worker(obox, "ollama", lambda w: w["models"], 20))
    models = {m["id"]: m for m in worker["models"]}
    assert list(models) == [CHAT_MODEL, EMBED_MODEL, IDLE_MODEL, FEATURE_MODEL]
    assert models[EMBED_MODEL]["capabilities"] == ["embed"]
    assert models[CHAT_MODEL]["capabilities"] == ["chat", "chatStream"]
    assert {m["capability_source"] for m in models.values()} == {"server"}
    assert models[CHAT_MODEL]["loaded"] is True and models[IDLE_MODEL]["loaded"] is None
    assert models[CHAT_MODEL]["context_length"] == 131072
    pinned = run(_worker(obox, "ollama-pinned", lambda w: w["up"], 20))
    assert {m["capability_source"] for m in pinned["models"]} == {"config"}


def test_a_model_not_pulled_says_ollama_pull(obox: Sandbox) -> None:
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama-pinned", "model": NOT_PULLED}))
    error = out["error"]
    assert error["type"] == "not_found" and not error["retryable"], error
    assert f"`ollama pull {NOT_PULLED}`" in error["message"], error
    assert _requests(obox, "/api/chat") == 1  # not retried


def test_a_model_that_cannot_chat_is_unsupported(obox: Sandbox) -> None:
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama-pinned", "model": EMBED_MODEL}))
    error = out["error"]
    assert error["type"] == "unsupported" and "does not support chat" in error["message"], error


def test_an_error_line_after_text_is_stream_interrupted_with_the_partial_text(obox: Sandbox) -> None:
    inject(obox, "ollama", {"path": "/api/chat", "mode": "error_event", "after_chunks": 3})
    out, deltas = run(_stream(obox, {"prompt": "a story", "provider": "ollama"}))
    error = out["error"]
    assert error["type"] == "stream_interrupted", error
    assert error["partial_text"] == "".join(deltas) == "Hello from the "
    assert "error was encountered while running the model" in error["message"]
    assert _requests(obox, "/api/chat") == 1  # text went out: never retried


def test_an_error_line_before_text_is_retried(obox: Sandbox) -> None:
    inject(obox, "ollama", {"path": "/api/chat", "mode": "error_event", "after_chunks": 0})
    out, deltas = run(_stream(obox, {"prompt": "again", "provider": "ollama"}))
    assert "error" not in out and out["text"] == GREETING + "again" == "".join(deltas), out
    assert _requests(obox, "/api/chat") == 2


@pytest.mark.parametrize(("status", "headers"), [(429, {"retry-after": "1"}), (503, {})])
def test_busy_and_rate_limited_are_retried(obox: Sandbox, status: int, headers: dict[str, str]) -> None:
    inject(obox, "ollama", {"path": "/api/chat", "mode": "status", "status": status, "headers": headers})
    started = time.monotonic()
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama"}))
    took = time.monotonic() - started
    print(f"\n{status} then success in {took:.2f}s")
    assert out.get("text") == GREETING + "hi", out
    assert _requests(obox, "/api/chat") == 2
    if headers:
        assert took >= 0.9  # the proxy's Retry-After was honoured


def test_overloaded_on_every_try_is_the_right_type(obox: Sandbox) -> None:
    inject(obox, "ollama", {"path": "/api/chat", "mode": "status", "status": 503, "times": 10})
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama"}))
    error = out["error"]
    assert error["type"] == "overloaded" and error["retryable"] and "server busy" in error["message"], error


def test_a_key_echoed_by_a_proxy_never_reaches_the_client(obox: Sandbox) -> None:
    inject(obox, "ollama", {"path": "/api/chat", "mode": "echo_key_in_error", "status": 401})
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama-pinned", "model": NOT_PULLED}))
    assert out["error"]["type"] == "auth", out
    assert PROXY_KEY not in str(out) and PROXY_KEY[-12:] not in str(out)
    stats = httpx.get(f"{obox.emulators.url('ollama')}/_emulator/stats").json()
    assert stats["last_headers"]["authorization"] == "[set]"  # the key went as Bearer


def test_server_down_makes_health_degraded_and_calls_say_where(obox: Sandbox) -> None:
    worker = run(_worker(obox, "ollama-down", lambda w: w["status"] == "degraded", 30))
    assert worker["last_error"] == "connection" and f"unreachable at {_DOWN_URL}" in worker["reason"], worker
    assert worker["circuit"]["state"] == "open" and worker["degraded_since"]
    out = run(_call(obox, "chat", {"prompt": "hi", "provider": "ollama-down"}))
    error = out["error"]
    assert error["type"] == "unavailable" and _DOWN_URL in error["message"], error

"""The gemini kind through the real stack: supervisord, gateway, a gemini worker, the Gemini
emulator, and the official MCP client: chat, chatStream, embed, and the error map."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.content import embedding_vector
from harness.sandbox import Sandbox
from tests.integration.conftest import inject, run
from tests.polling import wait_until_async

pytestmark = pytest.mark.integration

PROVIDER = "gemini"
CHAT, EMBED = "gemini-3.5-flash-lite", "gemini-embedding-001"
GENERATE = f"/v1beta/models/{CHAT}:generateContent"
STREAM = f"/v1beta/models/{CHAT}:streamGenerateContent"


def _gemini_defaults(config: dict[str, Any]) -> None:
    chat = {"provider": PROVIDER, "model": CHAT}
    config["defaults"] = {"chat": chat, "chatStream": chat, "embed": {"provider": PROVIDER, "model": EMBED}}
    # Quick retries so a retried call stays well inside its deadline.
    config["providers"][PROVIDER]["retry"] = {"base_delay_s": 0.05, "max_delay_s": 0.2}


@pytest.fixture(scope="module")
def gbox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.02, heartbeat_s=0.25, run_providers=(PROVIDER,), tweak=_gemini_defaults) as box:
        box.wait_workers_up()
        yield box


@pytest.fixture(autouse=True)
def _clean(gbox: Sandbox) -> None:
    base = gbox.emulators.url(PROVIDER)
    httpx.delete(f"{base}/_emulator/faults").raise_for_status()
    httpx.delete(f"{base}/_emulator/stats").raise_for_status()


def _requests(box: Sandbox, path: str) -> int:
    by_path: dict[str, int] = httpx.get(f"{box.emulators.url(PROVIDER)}/_emulator/stats").json()["by_path"]
    return by_path.get(path, 0)


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any], progress: list[str] | None = None) -> Any:
    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if progress is not None:
            progress.append(message or "")

    async with box.client() as client:
        return await client.call_tool(tool, arguments, progress_callback=on_progress if progress is not None
                                      else None)


def test_chat(gbox: Sandbox) -> None:
    result = run(_call(gbox, "chat", {"messages": [{"role": "system", "content": "be brief"},
                                                   {"role": "user", "content": "ping pong"}]}))
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["provider"] == PROVIDER and out["model"] == CHAT
    assert out["text"] == "Hello from the Gemini emulator. You said: ping pong"
    assert out["finish_reason"] == "stop"
    assert out["usage"] == {"input_tokens": 4, "output_tokens": 9, "total_tokens": 13}


def test_chat_stream_sends_each_delta_as_progress(gbox: Sandbox) -> None:
    deltas: list[str] = []
    result = run(_call(gbox, "chatStream", {"prompt": "tell me about streams"}, deltas))
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["text"] == "Hello from the Gemini emulator. You said: tell me about streams"
    assert len(deltas) == out["chunks"] == out["notifications"] == 11
    assert "".join(deltas) == out["text"] and out["finish_reason"] == "stop"


def test_embed_keeps_the_order(gbox: Sandbox) -> None:
    texts = ["alpha", "beta", "gamma"]
    result = run(_call(gbox, "embed", {"input": texts}))
    assert not result.is_error, result.content
    assert result.structured_content["vectors"] == [embedding_vector(t) for t in texts]
    assert result.structured_content["model"] == EMBED


def test_429_with_retry_info_is_retried_after_its_delay(gbox: Sandbox) -> None:
    # 1.5 s: longer than the 1 s the worker's rate limiter pauses after any 429 without a
    # Retry-After header, so only the RetryInfo delay explains the wait.
    inject(gbox, PROVIDER, {"mode": "status", "status": 429, "delay_s": 1.5, "path": GENERATE})
    result = run(_call(gbox, "chat", {"prompt": "after the limit"}))
    assert not result.is_error, result.content
    assert "after the limit" in result.structured_content["text"]
    assert _requests(gbox, GENERATE) == 2  # the 429, then the retry that succeeded
    latency = result.structured_content["latency_ms"]
    print(f"429 with retryDelay 1.5s, retried: latency {latency} ms")
    assert latency >= 1500  # the worker waited the provider's retryDelay, not its own short backoff


def test_retry_info_also_holds_back_other_calls_for_its_delay(gbox: Sandbox) -> None:
    """The worker's rate limiter pauses for RetryInfo's delay as for a Retry-After header: a
    second call made while the first waits out its 429 does not reach Gemini before the delay
    ends either (before, the limiter paused 1 s after any 429 without a Retry-After header)."""
    delay = 3.0
    inject(gbox, PROVIDER, {"mode": "status", "status": 429, "delay_s": delay, "path": GENERATE})

    async def scenario() -> tuple[float, Any, Any]:
        started = time.monotonic()
        first = asyncio.create_task(_call(gbox, "chat", {"prompt": "the one that met the limit"}))
        await wait_until_async(lambda: _requests(gbox, GENERATE) >= 1, timeout_s=10, what="the 429")
        await asyncio.sleep(1.3)  # past the 1 s a 429 without any hint pauses for
        second = await _call(gbox, "chat", {"prompt": "another caller"})
        return time.monotonic() - started, await first, second

    elapsed, first, second = run(scenario())
    assert not first.is_error and not second.is_error, (first.content, second.content)
    print(f"429 with retryDelay {delay}s: the second call finished {elapsed:.2f}s after the first began")
    assert elapsed >= delay  # it waited out the provider's delay (a lower bound: load only adds)
    assert _requests(gbox, GENERATE) == 3  # the 429, the first call's retry, the second call


def test_safety_block_is_content_blocked_and_not_retried(gbox: Sandbox) -> None:
    inject(gbox, PROVIDER, {"mode": "content_blocked", "after_chunks": 0, "error_code": "PROHIBITED_CONTENT"})
    result = run(_call(gbox, "chat", {"prompt": "some words to refuse"}))
    assert result.is_error
    error = result.structured_content["error"]
    assert error["type"] == "content_blocked" and error["retryable"] is False
    assert error["message"] == ("gemini blocked the prompt (blockReason PROHIBITED_CONTENT; "
                                "categories: HARM_CATEGORY_DANGEROUS_CONTENT)")
    assert "refuse" not in result.content[0].text
    assert _requests(gbox, GENERATE) == 1


def test_safety_stop_in_a_stream_keeps_what_was_sent(gbox: Sandbox) -> None:
    inject(gbox, PROVIDER, {"mode": "content_blocked", "after_chunks": 3})
    deltas: list[str] = []
    result = run(_call(gbox, "chatStream", {"prompt": "stream then stop"}, deltas))
    assert result.is_error
    error = result.structured_content["error"]
    # After text went out the gateway reports any failure as stream_interrupted, naming the cause.
    assert error["type"] == "stream_interrupted" and error["partial_text"] == "".join(deltas) == "Hello from the "
    assert "content_blocked: gemini stopped the answer (finishReason SAFETY" in error["message"]
    assert _requests(gbox, STREAM) == 1


def test_wrong_key_is_auth_without_the_key_anywhere(gbox: Sandbox) -> None:
    # The real API's answer to a wrong key: 400 INVALID_ARGUMENT, reason API_KEY_INVALID,
    # here with the key quoted back in the message as a careless proxy might.
    inject(gbox, PROVIDER, {"mode": "echo_key_in_error", "status": 400})
    result = run(_call(gbox, "chat", {"prompt": "x"}))
    assert result.is_error
    error = result.structured_content["error"]
    assert error["type"] == "auth" and "API key not valid" in error["message"]
    key = gbox.keys[PROVIDER]
    assert key not in result.content[0].text and key[-16:] not in str(result.structured_content)
    logs = "".join(p.read_text(errors="replace") for p in gbox.log_dir.rglob("*.log"))
    assert key not in logs and key[-16:] not in logs


@pytest.mark.parametrize(("status", "type_"), [(403, "permission"), (404, "not_found"), (400, "invalid_request")])
def test_client_errors_map_and_are_not_retried(gbox: Sandbox, status: int, type_: str) -> None:
    inject(gbox, PROVIDER, {"mode": "status", "status": status, "path": GENERATE})
    result = run(_call(gbox, "chat", {"prompt": "x"}))
    assert result.is_error and result.structured_content["error"]["type"] == type_
    assert f"HTTP {status}" in result.structured_content["error"]["message"]
    assert _requests(gbox, GENERATE) == 1


def test_overloaded_503_is_retried(gbox: Sandbox) -> None:
    inject(gbox, PROVIDER, {"mode": "status", "status": 503, "path": GENERATE})
    result = run(_call(gbox, "chat", {"prompt": "busy then fine"}))
    assert not result.is_error, result.content
    assert _requests(gbox, GENERATE) == 2

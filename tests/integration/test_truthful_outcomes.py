"""What the client and the operator see matches what happened (issue 13, items 1, 2 and 6).

Through the real stack (supervisord, gateway, workers, emulators) with the official MCP
client: a quiet gateway retries every rate-limited call its provider's Retry-After allows;
a stream that failed before its first chunk is a retried, fallback-able provider error,
never ``stream_interrupted``; LM Studio's own model types decide what a model can do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.lmstudio_api import DEFAULT_MODELS
from harness.sandbox import Sandbox
from tests.integration.conftest import clear_faults, inject, run

pytestmark = pytest.mark.integration

_STREAM_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages",
                 "lmstudio": "/v1/chat/completions"}


def _tune(providers: dict[str, Any]) -> None:
    providers["fallbacks"] = {"chat": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
                              "chatStream": [{"provider": "anthropic", "model": "claude-haiku-4-5"}]}
    for config in providers["providers"].values():
        # Short backoff for errors without a hint; the retry budget keeps its shipped defaults.
        config["retry"] = {"base_delay_s": 0.01, "max_delay_s": 0.05}
        # Tests here inject failures back to back; an open circuit would hide what each one checks.
        config["circuit"] = {"failure_threshold": 100}


@pytest.fixture(scope="module")
def tbox() -> Iterator[Sandbox]:
    with Sandbox(chunk_delay_s=0.01, heartbeat_s=0.2, tweak=_tune) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(autouse=True)
def _clean(tbox: Sandbox) -> Iterator[None]:
    clear_faults(tbox)
    for provider in ("openai", "anthropic", "lmstudio"):
        httpx.delete(f"{tbox.emulators.url(provider)}/_emulator/stats").raise_for_status()
    yield
    clear_faults(tbox)


def _requests(box: Sandbox, provider: str, path: str) -> int:
    by_path: dict[str, int] = httpx.get(f"{box.emulators.url(provider)}/_emulator/stats").json()["by_path"]
    return by_path.get(path, 0)


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with box.client() as client:
        if tool == "chatStream":
            deltas: list[str] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                deltas.append(message or "")

            result = await client.call_tool(tool, arguments, progress_callback=on_progress)
        else:
            result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None
    return result.structured_content


def _worker(box: Sandbox, provider: str) -> dict[str, Any]:
    health = run(_call(box, "getHealth", {}))
    return next(w for w in health["workers"] if w["provider"] == provider)


# ---- item 1: the retry budget does not starve a quiet gateway -----------------------------


def test_quiet_gateway_retries_every_rate_limited_call(tbox: Sandbox) -> None:
    before = _worker(tbox, "openai")["counters"]
    outcomes: list[str] = []
    started = time.monotonic()
    for _ in range(7):  # one person's editor: every call meets one 429 with Retry-After 1 s
        inject(tbox, "openai", {"path": "/v1/chat/completions", "mode": "status", "status": 429,
                                "headers": {"retry-after": "1"}})
        out = run(_call(tbox, "chat", {"prompt": "hello", "provider": "openai"}))
        outcomes.append(out["error"]["type"] if "error" in out else "ok")
    elapsed = time.monotonic() - started
    after = _worker(tbox, "openai")["counters"]
    granted = after.get("retry_budget_granted", 0) - before.get("retry_budget_granted", 0)
    refused = after.get("retry_budget_refusals", 0) - before.get("retry_budget_refusals", 0)
    print(f"\n7 rate-limited calls in {elapsed:.1f}s: {outcomes}; budget granted {granted}, refused {refused}")
    assert outcomes == ["ok"] * 7
    assert _requests(tbox, "openai", "/v1/chat/completions") == 14  # each call: the 429, then its retry
    assert (granted, refused) == (7, 0)


# ---- item 2: stream_interrupted only when text reached the client -------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
@pytest.mark.parametrize("mode", ["html", "close_mid_headers"])
def test_stream_failing_before_its_first_chunk_is_retried(tbox: Sandbox, provider: str, mode: str) -> None:
    path = _STREAM_PATHS[provider]
    inject(tbox, provider, {"path": path, "mode": mode})
    out = run(_call(tbox, "chatStream", {"prompt": "a story", "provider": provider}))
    tries = _requests(tbox, provider, path)
    print(f"\n{provider} chatStream after {mode}: {out.get('error', {}).get('type', 'ok')} after {tries} requests")
    assert "error" not in out, out
    assert out["provider"] == provider and out["text"] and tries == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_plain_chat_closed_mid_headers_is_retried(tbox: Sandbox, provider: str) -> None:
    path = _STREAM_PATHS[provider]
    inject(tbox, provider, {"path": path, "mode": "close_mid_headers"})
    out = run(_call(tbox, "chat", {"prompt": "hi", "provider": provider}))
    print(f"\n{provider} chat after close_mid_headers: {out.get('error', {}).get('type', 'ok')}")
    assert "error" not in out, out
    assert _requests(tbox, provider, path) == 2


@pytest.mark.parametrize("mode", ["html", "close_mid_headers"])
def test_stream_failing_before_its_first_chunk_falls_back(tbox: Sandbox, mode: str) -> None:
    inject(tbox, "openai", {"path": "/v1/chat/completions", "mode": mode, "times": 3})
    out = run(_call(tbox, "chatStream", {"prompt": "a story"}))
    print(f"\ndefault chatStream, openai always {mode}: served by {out.get('provider')}, "
          f"passed over {out.get('route', {}).get('fallback_from')}")
    assert out["provider"] == "anthropic", out
    assert out["route"]["fallback_from"] == [{"provider": "openai", "model": "gpt-4o-mini",
                                              "reason": "provider_error"}]
    assert _requests(tbox, "openai", "/v1/chat/completions") == 3


# ---- item 6: what a model can do comes from the server, a probe, then the name ------------

_MODELS = [{"id": "qwen2.5-7b-instruct"}, {"id": "nomic-text-v1.5", "type": "embeddings"}]


@pytest.fixture
def lmstudio_models(tbox: Sandbox) -> Iterator[EmulatorControl]:
    with EmulatorControl(tbox.emulators.url("lmstudio")) as control:
        control.set_models(_MODELS)  # the embedding model's id does not contain "embed"
        yield control
        control.set_models([m.model_dump() for m in DEFAULT_MODELS])


def _models_after_refresh(box: Sandbox) -> dict[str, dict[str, Any]]:
    health = run(_call(box, "getHealth", {"refresh_models": True}))
    worker = next(w for w in health["workers"] if w["provider"] == "lmstudio")
    return {m["id"]: m for m in worker["models"]}


@pytest.mark.parametrize("listing", ["native", "openai_only"])
def test_an_embedding_model_not_named_embed_is_found(
        tbox: Sandbox, lmstudio_models: EmulatorControl, listing: str) -> None:
    if listing == "openai_only":  # a server without LM Studio's native listing: no model types
        inject(tbox, "lmstudio", {"path": "/api/v0/models", "mode": "status", "status": 404, "times": 1000})
    models = _models_after_refresh(tbox)
    out = run(_call(tbox, "embed", {"input": "hello", "provider": "lmstudio"}))
    shown = {k: (v["capabilities"], v.get("capability_source")) for k, v in models.items()}
    print(f"\n{listing}: models {shown}; embed -> {out.get('model') or out['error']['type']}")
    expected_source = "server" if listing == "native" else "probe"
    assert models["nomic-text-v1.5"]["capabilities"] == ["embed"]
    assert models["nomic-text-v1.5"]["capability_source"] == expected_source
    assert models["qwen2.5-7b-instruct"]["capabilities"] == ["chat", "chatStream"]
    assert models["qwen2.5-7b-instruct"]["capability_source"] == expected_source
    assert out.get("model") == "nomic-text-v1.5" and out["dimensions"] > 0, out

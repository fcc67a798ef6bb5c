"""The worker's resilience layer around the real adapters, against emulators with injected faults.

Every test runs twice: on the worker's aiohttp client (``workers.http_client``) and on the
httpx-backed client the adapter unit tests use, so both map each fault to the same
taxonomy error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, EmbedRequest, Message, TextDelta
from tests.unit.workers.providers.helpers import HttpxTestClient
from tests.unit.workers.resilience.emulated import KEY, config
from workers.http_client import AiohttpClient, HttpClient, Timeouts
from workers.providers.adapters import create_adapter
from workers.resilience.caller import ResilientCaller

_TRANSPORT = ["aiohttp"]  # set per test by the fixture below


@pytest.fixture(autouse=True, params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest) -> str:
    _TRANSPORT[0] = request.param
    return str(request.param)


def new_client(read_s: float = 5.0) -> HttpClient:
    if _TRANSPORT[0] == "aiohttp":
        return AiohttpClient(Timeouts(connect_s=5.0, read_s=read_s, pool_s=5.0), max_connections=8)
    return HttpxTestClient(httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=read_s)))


async def with_caller(cfg: ProviderConfig, body: Any) -> Any:
    async with contextlib.aclosing(new_client()) as client:
        caller = ResilientCaller("openai", cfg, create_adapter("openai", cfg, KEY, client))
        return await body(caller)


REQUEST = ChatRequest(model="gpt-4o-mini", messages=[Message("user", "hello there")])


async def stream_all(caller: ResilientCaller, deadline: float) -> list[TextDelta | ChatResult]:
    stream = caller.stream_chat(REQUEST, deadline)
    async with contextlib.aclosing(stream):
        return [item async for item in stream]


def test_rate_limit_with_retry_after_is_retried_once(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 429, "headers": {"retry-after": "0.2"}})
    started = time.monotonic()
    result = asyncio.run(with_caller(config(emulators), lambda c: c.chat(REQUEST, time.monotonic() + 5)))
    assert "hello there" in result.text
    assert time.monotonic() - started >= 0.2  # the hint was honoured
    assert control.stats()["requests"] == 2


@pytest.mark.parametrize("headers", [{"retry-after-ms": "150"}, {"retry-after": "Thu, 01 Jan 2026 00:00:00 GMT"}])
def test_other_hint_forms(emulators: BackgroundEmulators, control: EmulatorControl, headers: dict[str, str]) -> None:
    control.add_faults({"mode": "status", "status": 429, "headers": headers})
    asyncio.run(with_caller(config(emulators), lambda c: c.chat(REQUEST, time.monotonic() + 5)))
    assert control.stats()["requests"] == 2


def test_quota_429_and_auth_are_never_retried(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 429, "error_code": "insufficient_quota"},
                       {"mode": "status", "status": 401})
    for expected in (errors.QuotaExhausted, errors.AuthError):
        with pytest.raises(expected):
            asyncio.run(with_caller(config(emulators), lambda c: c.chat(REQUEST, time.monotonic() + 5)))
    assert control.stats()["requests"] == 2


def test_should_retry_false_is_obeyed(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 503, "headers": {"x-should-retry": "false"}})
    with pytest.raises(errors.Overloaded):
        asyncio.run(with_caller(config(emulators), lambda c: c.chat(REQUEST, time.monotonic() + 5)))
    assert control.stats()["requests"] == 1


def test_persistent_5xx_gives_up_after_max_attempts(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 500, "times": 10})
    with pytest.raises(errors.ProviderError):
        asyncio.run(with_caller(config(emulators), lambda c: c.embed(
            EmbedRequest(model="text-embedding-3-small", inputs=["a"]), time.monotonic() + 5)))
    assert control.stats()["requests"] == 3


def test_stream_is_retried_before_the_first_chunk_only(emulators: BackgroundEmulators,
                                                      control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 529})
    items = asyncio.run(with_caller(config(emulators), lambda c: stream_all(c, time.monotonic() + 5)))
    assert isinstance(items[-1], ChatResult) and control.stats()["requests"] == 2
    control.reset()
    control.add_faults({"mode": "truncated_stream", "after_chunks": 2})
    with pytest.raises(errors.StreamInterrupted) as caught:
        asyncio.run(with_caller(config(emulators), lambda c: stream_all(c, time.monotonic() + 5)))
    assert caught.value.partial_text and control.stats()["requests"] == 1


def test_silent_stream_hits_the_idle_guard(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "silent_stream", "after_chunks": 1, "delay_s": 30})
    cfg = config(emulators, stream_guards={"idle_timeout_s": 0.3})
    started = time.monotonic()
    with pytest.raises(errors.Timeout) as caught:
        asyncio.run(with_caller(cfg, lambda c: stream_all(c, time.monotonic() + 10)))
    assert time.monotonic() - started < 2 and caught.value.partial_text


def test_circuit_opens_and_then_fails_fast_without_calling(emulators: BackgroundEmulators,
                                                          control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 500, "times": 100})
    cfg = config(emulators, retry={"max_attempts": 1}, circuit={"failure_threshold": 3, "cooldown_s": 30})

    async def body(caller: ResilientCaller) -> list[str]:
        seen = []
        for _ in range(5):
            try:
                await caller.chat(REQUEST, time.monotonic() + 5)
            except errors.LLMCallerError as exc:
                seen.append(exc.type)
        return seen

    assert asyncio.run(with_caller(cfg, body)) == ["provider_error"] * 3 + ["unavailable"] * 2
    assert control.stats()["requests"] == 3


def test_worker_rate_limit_refuses_past_its_bucket(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    cfg = config(emulators, rate_limits={"requests_per_min": 2, "max_wait_s": 0.1})

    async def body(caller: ResilientCaller) -> list[str]:
        outcomes = []
        for _ in range(3):
            try:
                await caller.chat(REQUEST, time.monotonic() + 5)
                outcomes.append("ok")
            except errors.RateLimited as exc:
                assert exc.retry_after_s and exc.retry_after_s > 0
                outcomes.append("rate_limited")
        return outcomes

    assert asyncio.run(with_caller(cfg, body)) == ["ok", "ok", "rate_limited"]
    assert control.stats()["requests"] == 2


def anthropic_config(emulators: BackgroundEmulators, **extra: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({
        "kind": "anthropic", "base_url": emulators.url("anthropic"), "secret": {"env": "X"},
        "models": [{"id": "claude-haiku-4-5", "capabilities": ["chat", "chatStream"]}],
        "retry": {"base_delay_s": 0.01, "max_delay_s": 0.05}, **extra})


ANTHROPIC_REQUEST = ChatRequest(model="claude-haiku-4-5", messages=[Message("user", "hello there")])


async def with_anthropic(cfg: ProviderConfig, body: Any) -> Any:
    async with contextlib.aclosing(new_client(cfg.timeouts.read_s)) as client:
        caller = ResilientCaller("anthropic", cfg, create_adapter("anthropic", cfg, KEY, client))
        return await body(caller)


@pytest.fixture
def anthropic_control(emulators: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulators.url("anthropic")) as ctl:
        ctl.reset()
        yield ctl
        ctl.reset()


def test_anthropic_529_is_overloaded_and_retried(emulators: BackgroundEmulators,
                                                anthropic_control: EmulatorControl) -> None:
    anthropic_control.add_faults({"mode": "status", "status": 529})
    result = asyncio.run(with_anthropic(anthropic_config(emulators),
                                        lambda c: c.chat(ANTHROPIC_REQUEST, time.monotonic() + 5)))
    assert result.text and anthropic_control.stats()["requests"] == 2


def test_anthropic_error_event_after_200_is_retried_before_any_chunk(
        emulators: BackgroundEmulators, anthropic_control: EmulatorControl) -> None:
    anthropic_control.add_faults({"mode": "error_event", "after_chunks": 0})

    async def body(caller: ResilientCaller) -> list[Any]:
        stream = caller.stream_chat(ANTHROPIC_REQUEST, time.monotonic() + 5)
        async with contextlib.aclosing(stream):
            return [item async for item in stream]

    items = asyncio.run(with_anthropic(anthropic_config(emulators), body))
    assert isinstance(items[-1], ChatResult) and anthropic_control.stats()["requests"] == 2
    anthropic_control.reset()
    anthropic_control.add_faults({"mode": "error_event", "after_chunks": 2})
    with pytest.raises(errors.Overloaded) as caught:
        asyncio.run(with_anthropic(anthropic_config(emulators), body))
    assert caught.value.partial_text and anthropic_control.stats()["requests"] == 1


def test_slow_provider_times_out_at_the_read_timeout(emulators: BackgroundEmulators,
                                                    control: EmulatorControl) -> None:
    control.add_faults({"mode": "delay", "delay_s": 3, "times": 5})
    cfg = config(emulators, timeouts={"read_s": 0.3}, retry={"max_attempts": 2, "base_delay_s": 0.01})

    async def body(caller: ResilientCaller) -> None:
        async with contextlib.aclosing(new_client(0.3)) as client:
            caller.adapter.client = client
            await caller.chat(REQUEST, time.monotonic() + 5)

    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        asyncio.run(with_caller(cfg, body))
    assert time.monotonic() - started < 2 and control.stats()["requests"] == 2


def test_connection_refused_is_a_retryable_connection_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    cfg = ProviderConfig.model_validate({
        "kind": "openai", "base_url": f"http://127.0.0.1:{closed_port}/v1", "secret": {"env": "X"},
        "retry": {"base_delay_s": 0.01, "max_delay_s": 0.02}})
    with pytest.raises(errors.ConnectionFailed) as caught:
        asyncio.run(with_caller(cfg, lambda c: c.chat(REQUEST, time.monotonic() + 5)))
    assert caught.value.retryable
    # It says where (the base URL: the operator's to check) and, through aiohttp, why.
    assert caught.value.message.startswith(f"cannot reach openai at http://127.0.0.1:{closed_port}/v1: connection")


def test_malformed_chunk_after_text_is_stream_interrupted(emulators: BackgroundEmulators,
                                                         control: EmulatorControl) -> None:
    control.add_faults({"mode": "malformed", "after_chunks": 2})
    with pytest.raises(errors.StreamInterrupted) as caught:
        asyncio.run(with_caller(config(emulators), lambda c: stream_all(c, time.monotonic() + 5)))
    assert caught.value.partial_text and control.stats()["requests"] == 1

"""The worker's call counters against what the emulator saw (issue #13: counters match the faults).

Each test drives a real adapter on the worker's aiohttp client against the OpenAI emulator
with a few injected faults, then checks the counters against the emulator's own count of
requests and faults: ``requests == attempts + retries + probes`` and every fault on a call
is one failed attempt, which was retried, given up on, or whose retry was dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, EmbedRequest, Message
from tests.unit.workers.resilience.emulated import KEY, config
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.adapters import create_adapter
from workers.resilience.caller import ResilientCaller

REQUEST = ChatRequest(model="gpt-4o-mini", messages=[Message("user", "hello there")])
EMBED = EmbedRequest(model="text-embedding-3-small", inputs=["a"])


def run(cfg: ProviderConfig, body: Callable[[ResilientCaller], Awaitable[None]]) -> dict[str, int]:
    """Run ``body`` with a caller on the worker's own HTTP client; the caller's counters after it."""
    async def main() -> dict[str, int]:
        client = AiohttpClient(Timeouts(connect_s=5.0, read_s=5.0, pool_s=5.0), max_connections=8)
        async with contextlib.aclosing(client):
            caller = ResilientCaller("openai", cfg, create_adapter("openai", cfg, KEY, client))
            await body(caller)
            return caller.counters()

    return asyncio.run(main())


async def quietly(call: Awaitable[Any]) -> None:
    """Await ``call``; a taxonomy error is an expected outcome here, the counters tell the rest."""
    with contextlib.suppress(errors.LLMCallerError):
        await call


async def drain(caller: ResilientCaller) -> None:
    stream = caller.stream_chat(REQUEST, time.monotonic() + 5)
    async with contextlib.aclosing(stream):
        async for _ in stream:
            pass


def assert_adds_up(counters: dict[str, int], stats: dict[str, Any]) -> None:
    """The invariants the soak checks, on one small run."""
    assert stats["requests"] == counters["attempts"] + counters["retries"] + counters["probes"]
    assert counters["failed_attempts"] == counters["retries"] + counters["gave_up"] + counters["retry_dropped"]


def test_retries_give_ups_and_failed_attempts_match_the_faults(emulators: BackgroundEmulators,
                                                               control: EmulatorControl) -> None:
    async def body(caller: ResilientCaller) -> None:
        control.add_faults({"mode": "status", "status": 429, "headers": {"retry-after": "0"}, "times": 2})
        await caller.chat(REQUEST, time.monotonic() + 5)  # 429, 429, ok
        control.add_faults({"mode": "status", "status": 500, "times": 3})
        await quietly(caller.embed(EMBED, time.monotonic() + 5))  # 500 x 3: gives up
        control.add_faults({"mode": "truncated_stream", "after_chunks": 2})
        await quietly(drain(caller))  # truncated after text went out: no retry
        control.add_faults({"mode": "close_mid_headers"})
        await drain(caller)  # closed before the first chunk: retried, then ok

    counters = run(config(emulators), body)
    stats = control.stats()
    assert stats["faults"] == 7
    assert {k: counters[k] for k in ("attempts", "retries", "failed_attempts", "gave_up", "retry_dropped")} == {
        "attempts": 4, "retries": 5, "failed_attempts": 7, "gave_up": 2, "retry_dropped": 0}
    assert_adds_up(counters, stats)


def test_a_retry_cancelled_while_backing_off_is_dropped_not_counted(emulators: BackgroundEmulators,
                                                                    control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 429, "headers": {"retry-after": "5"}})

    async def body(caller: ResilientCaller) -> None:
        task = asyncio.create_task(caller.chat(REQUEST, time.monotonic() + 30))
        while caller.stats.failed_attempts == 0:  # the 429 arrived; the caller now waits 5 s
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    counters = run(config(emulators, retry={"max_hint_s": 10}), body)
    assert (counters["retries"], counters["retry_dropped"], counters["cancelled"]) == (0, 1, 1)
    assert counters["retry_budget_granted"] == 1  # the budget did grant it: that is not a retry sent
    assert_adds_up(counters, control.stats())


def test_a_call_the_rate_limiter_refuses_is_no_attempt(emulators: BackgroundEmulators,
                                                       control: EmulatorControl) -> None:
    cfg = config(emulators, rate_limits={"requests_per_min": 1, "max_wait_s": 0.1})

    async def body(caller: ResilientCaller) -> None:
        await caller.chat(REQUEST, time.monotonic() + 5)
        await quietly(caller.chat(REQUEST, time.monotonic() + 5))

    counters = run(cfg, body)
    assert (counters["attempts"], counters["refused"], counters["rate_limit_rejections"]) == (1, 1, 1)
    assert_adds_up(counters, control.stats())


def test_model_listings_are_counted_and_not_retried_by_the_http_client(emulators: BackgroundEmulators,
                                                                       control: EmulatorControl) -> None:
    """aiohttp resends an idempotent GET once when a kept-alive connection closes without an
    answer; the worker's client must not, or the provider sees a request nobody counted."""
    async def body(caller: ResilientCaller) -> None:
        await caller.list_models()  # leaves a kept-alive connection for the next listing
        control.add_faults({"mode": "drop"}, {"mode": "status", "status": 500})
        await quietly(caller.list_models())
        await quietly(caller.list_models())

    counters = run(config(emulators), body)
    stats = control.stats()
    assert (counters["probes"], counters["failed_probes"], stats["faults"]) == (3, 2, 2)
    assert_adds_up(counters, stats)

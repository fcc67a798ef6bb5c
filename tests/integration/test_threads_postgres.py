"""Two gateways, one team (#17): a thread continued through either gateway on one PostgreSQL store.

Two sandboxes (each its own gateway, workers and emulators) share a fresh database on the
test session's PostgreSQL server; each registers the same client name, as one team's
registry would. A thread started through one gateway goes on through the other with its
whole history, and two turns racing through the two gateways end with one kept and the
other failing cleanly ("this thread changed"), the thread holding the winner's turn whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from shared.tool_names import CHAT, THREADS
from tests.integration.conftest import run
from tests.integration.test_threads import last_body, texts
from tests.pg_server import PgServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(pg_server: PgServer) -> Iterator[tuple[Sandbox, Sandbox]]:
    url, settings = pg_server.fresh_database()
    env = {"LLMC_STORE_URL": url, "LLMC_STORE_PASSWORD_FILE": str(settings.password_file)}
    with Sandbox(heartbeat_s=0.25, run_providers=("openai", "anthropic"), env=env) as one, \
            Sandbox(heartbeat_s=0.25, run_providers=("openai", "anthropic"), env=env) as two:
        one.wait_workers_up()
        two.wait_workers_up()
        yield one, two


async def _call(box: Sandbox, arguments: dict[str, Any], tool: str = CHAT) -> tuple[bool, dict[str, Any]]:
    async with box.client() as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None, result.content
    return bool(result.is_error), result.structured_content


def call(box: Sandbox, arguments: dict[str, Any], tool: str = CHAT) -> dict[str, Any]:
    is_error, content = run(_call(box, arguments, tool))
    assert not is_error, content
    return content


def test_a_thread_goes_on_through_either_gateway(pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    first = call(one, {"prompt": "one", "thread": "new"})
    second = call(two, {"prompt": "two", "provider": "anthropic", "thread_id": first["thread_id"]})
    assert second["thread"]["turn"] == 1
    assert texts("anthropic", last_body(two, "anthropic")) == [("user", "one"), ("assistant", first["text"]),
                                                              ("user", "two")]
    third = call(one, {"prompt": "three", "thread_id": first["thread_id"]})
    assert third["thread"]["turns"] == 3
    assert [t for r, t in texts("openai", last_body(one, "openai")) if r == "user"] == ["one", "two", "three"]
    listed = {t["thread_id"]: t for t in call(two, {}, THREADS)["threads"]}
    assert listed[first["thread_id"]]["models"] == ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"]


def test_two_turns_racing_through_two_gateways_keep_one_and_refuse_the_other(
        pair: tuple[Sandbox, Sandbox]) -> None:
    one, two = pair
    thread_id = call(one, {"prompt": "start", "thread": "new"})["thread_id"]
    with EmulatorControl(one.emulators.url("openai")) as control:
        control.add_faults({"mode": "delay", "delay_s": 3, "path": "/v1/chat/completions"})
        before = control.stats()["requests"]

    def reached() -> None:
        deadline = time.monotonic() + 10
        with EmulatorControl(one.emulators.url("openai")) as control:
            while control.stats()["requests"] <= before:
                assert time.monotonic() < deadline, "the slow turn never reached its provider"
                time.sleep(0.05)

    async def race() -> tuple[tuple[bool, dict[str, Any]], tuple[bool, dict[str, Any]]]:
        slow = asyncio.create_task(_call(one, {"prompt": "slow", "thread_id": thread_id}))
        await asyncio.to_thread(reached)
        fast = await _call(two, {"prompt": "fast", "thread_id": thread_id})
        return await slow, fast

    (slow_error, slow), (fast_error, fast) = run(race())
    assert not fast_error and fast["thread"]["turn"] == 1
    assert slow_error and slow["error"]["type"] == "unavailable" and slow["error"]["retryable"]
    assert "this thread changed while this turn ran" in slow["error"]["message"]
    after = call(one, {"prompt": "after", "thread_id": thread_id})
    assert after["thread"]["turn"] == 2
    assert [t for r, t in texts("openai", last_body(one, "openai")) if r == "user"] == ["start", "fast", "after"]

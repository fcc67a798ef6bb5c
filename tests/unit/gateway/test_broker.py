"""The gateway's worker link, driven over real ZeroMQ sockets by a scripted fake worker.

The fake completes the authenticated handshake (tests/unit/link_fakes.py) before it
does anything else; the attacks on that handshake are in test_link_auth_handshake.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import WorkerBroker
from shared import errors
from shared.link_auth import new_nonce
from shared.link_session import LinkSession
from shared.messages import Op
from shared.models import TextDelta
from shared.protocol import Command
from tests.polling import wait_until_async
from tests.unit.link_fakes import LINK_KEY, FakeWorker

PROVIDERS = ("openai", "anthropic")


def run_with_broker(
    tmp_path: Path, scenario: Callable[[WorkerBroker, FakeWorker], Awaitable[None]], **options: Any
) -> None:
    async def main() -> None:
        broker = WorkerBroker(f"ipc://{tmp_path}/w.sock", link_key=LINK_KEY, workers=PROVIDERS,
                              heartbeat_s=0.1, liveness=3, ready_wait_s=1.0, **options)
        await broker.start()
        worker = FakeWorker(broker.endpoint)
        try:
            await scenario(broker, worker)
        finally:
            worker.close()
            await broker.stop()

    asyncio.run(main())


async def collect(events: AsyncGenerator[Any, None]) -> list[Any]:
    async with contextlib.aclosing(events) as stream:
        return [e async for e in stream]


async def _until_accepted(broker: WorkerBroker, request_id: str) -> None:
    """Until the broker has taken in the worker's ACCEPTED for the call (it then counts as accepted work)."""
    def accepted() -> bool:
        call = broker._calls.get(request_id)
        return call is not None and call.accepted

    await wait_until_async(accepted, 5, f"the broker saw call {request_id} accepted", interval_s=0.005)


def test_streamed_call_yields_deltas_then_reply(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT_STREAM, {"x": 1}, 5.0)))
        request = await worker.expect(Command.REQUEST)
        assert request.payload["op"] == "chat_stream" and request.payload["request"] == {"x": 1}
        assert 0 < request.payload["timeout_s"] <= 5.0
        await worker.send(Command.ACCEPTED, request.request_id)
        await worker.send(Command.CHUNK, request.request_id, {"text": "Hel"})
        await worker.send(Command.CHUNK, request.request_id, {"text": "lo"})
        await worker.send(Command.REPLY, request.request_id, {"text": "Hello"})
        assert await task == [TextDelta("Hel"), TextDelta("lo"), {"text": "Hello"}]
        assert broker.worker("openai").inflight == set()

    run_with_broker(tmp_path, scenario)


def test_error_frame_becomes_taxonomy_error(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 5.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.ERROR, request.request_id,
                          errors.RateLimited("slow down", provider="openai", retry_after_s=2).to_payload())
        with pytest.raises(errors.RateLimited) as caught:
            await task
        assert caught.value.retry_after_s == 2 and caught.value.retryable

    run_with_broker(tmp_path, scenario)


def test_accepted_call_fails_worker_lost_when_worker_restarts(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 5.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.ACCEPTED, request.request_id)
        await _until_accepted(broker, request.request_id)
        await worker.restart()
        with pytest.raises(errors.WorkerLost) as caught:
            await task
        assert "not repeated" in caught.value.message
        assert broker.worker("openai").restarts_seen == 1
        # It was never re-sent to the new incarnation.
        with pytest.raises(TimeoutError):
            await worker.expect(Command.REQUEST, timeout=0.3)

    run_with_broker(tmp_path, scenario)


def test_unaccepted_call_is_resent_to_restarted_worker(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {"n": 1}, 5.0)))
        first = await worker.expect(Command.REQUEST)
        await worker.restart()  # died before accepting: the request cost nothing yet
        again = await worker.expect(Command.REQUEST)
        assert again.request_id == first.request_id and again.payload["request"] == {"n": 1}
        await worker.send(Command.ACCEPTED, again.request_id)
        await worker.send(Command.REPLY, again.request_id, {"ok": True})
        assert await task == [{"ok": True}]

    run_with_broker(tmp_path, scenario)


def test_silent_worker_is_declared_dead_and_accepted_call_fails(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 10.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.ACCEPTED, request.request_id)
        # No heartbeats from now on, as if the worker were frozen (SIGSTOP).
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.WorkerLost) as caught:
            await task
        assert asyncio.get_running_loop().time() - started < 1.5
        assert "missed 3 heartbeats" in caught.value.message
        assert not broker.worker("openai").up

    run_with_broker(tmp_path, scenario)


def test_heartbeat_from_unknown_worker_asks_it_to_register(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        # Signed under a session this gateway never made, as after a gateway restart.
        worker.session = LinkSession(LINK_KEY, "openai", new_nonce(), new_nonce(), "worker")
        await worker.send(Command.HEARTBEAT, "", {"status": "ready"})
        await worker.expect(Command.DISCONNECT)
        # Handshaking again is all it takes; no worker restart.
        await worker.ready()
        await asyncio.wait_for(broker.worker("openai").ready_event.wait(), 2.0)

    run_with_broker(tmp_path, scenario)


def test_no_worker_gives_unavailable_quickly(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        with pytest.raises(errors.Unavailable) as caught:
            await collect(broker.call("anthropic", Op.CHAT, {}, 5.0))
        assert caught.value.retryable and "not running" in caught.value.message

    run_with_broker(tmp_path, scenario)


def test_deadline_gives_timeout_and_cancels_at_worker(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 0.4)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.ACCEPTED, request.request_id)
        heartbeat = asyncio.create_task(_keep_alive(worker))
        with pytest.raises(errors.Timeout):
            await task
        cancel = await worker.expect(Command.CANCEL)
        heartbeat.cancel()
        assert cancel.request_id == request.request_id

    run_with_broker(tmp_path, scenario)


def test_client_going_away_cancels_at_worker(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT_STREAM, {}, 5.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.ACCEPTED, request.request_id)
        await _until_accepted(broker, request.request_id)
        task.cancel()
        cancel = await worker.expect(Command.CANCEL)
        assert cancel.request_id == request.request_id

    run_with_broker(tmp_path, scenario)


def test_concurrency_is_bounded_per_worker(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        first = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 5.0)))
        await worker.expect(Command.REQUEST)
        with pytest.raises(errors.Unavailable) as caught:
            await collect(broker.call("openai", Op.CHAT, {}, 5.0))
        assert "concurrency limit" in caught.value.message
        first.cancel()

    run_with_broker(tmp_path, scenario, concurrency={"openai": 1}, slot_wait_s=0.2)


def test_late_and_foreign_answers_are_ignored(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, worker: FakeWorker) -> None:
        await worker.ready()
        await worker.send(Command.REPLY, "no-such-request", {"x": 1})
        await worker.sock.send_multipart([b"garbage"])  # not the protocol: dropped, link stays up
        task = asyncio.create_task(collect(broker.call("openai", Op.CHAT, {}, 5.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.REPLY, request.request_id, {"fine": True})
        assert await task == [{"fine": True}]

    run_with_broker(tmp_path, scenario)


async def _keep_alive(worker: FakeWorker) -> None:
    while True:
        await worker.send(Command.HEARTBEAT, "", {"status": "ready"})
        await asyncio.sleep(0.05)  # the fake worker's heartbeat interval, not a wait for something

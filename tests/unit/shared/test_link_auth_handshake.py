"""The authenticated worker link under attack: wrong keys, replays, strangers, forgeries, impostors.

Real sockets throughout (ipc in the test's private folder, or tcp on 127.0.0.1 for
CurveZMQ); the fakes in link_fakes.py misbehave one step at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from gateway.broker import WorkerBroker
from gateway.link_security import GatewayLink, LinkRejected
from shared import errors
from shared.link_auth import new_nonce, prove
from shared.link_keys import load_curve_client, load_curve_server
from shared.link_session import FailureThrottle, LinkSession
from shared.messages import Op
from shared.protocol import Command, decode, encode, pack, unpack
from shared.settings import Settings
from tests.polling import wait_until_async
from tests.unit.link_fakes import LINK_KEY, WRONG_KEY, FakeWorker, make_curve_dir, stray_curve_keys
from workers.link_security import WorkerLink
from workers.runtime import WorkerRuntime

PROVIDERS = ("openai", "anthropic")
Events = list[tuple[str, dict[str, Any]]]


async def _collect(events: AsyncGenerator[Any, None]) -> list[Any]:
    async with contextlib.aclosing(events) as stream:
        return [e async for e in stream]


def _reasons(events: Events) -> list[str]:
    return [fields["reason"] for name, fields in events if name == "link_auth_failed"]


def run_gateway(tmp_path: Path, scenario: Callable[[WorkerBroker, Events], Awaitable[None]],
                endpoint: str | None = None, **options: Any) -> None:
    events: Events = []

    async def main() -> None:
        broker = WorkerBroker(endpoint or f"ipc://{tmp_path}/w.sock", link_key=LINK_KEY, workers=PROVIDERS,
                              heartbeat_s=0.1, liveness=3, ready_wait_s=0.5, auth_report_interval_s=0.0,
                              on_event=lambda name, fields: events.append((name, fields)), **options)
        await broker.start()
        try:
            await scenario(broker, events)
        finally:
            await broker.stop()

    asyncio.run(main())


# ---- the gateway refuses workers that cannot prove themselves ----------------------------


async def _answer_with_wrong_key(rogue: FakeWorker) -> None:
    """HELLO, then a READY to the real challenge made with the rogue's key (it cannot know ours)."""
    nonce, challenge = await rogue.hello()
    gateway_nonce = bytes.fromhex(challenge.payload["nonce"])
    rogue.session = LinkSession(WRONG_KEY, rogue.name, nonce, gateway_nonce, "worker")
    payload = {"provider": rogue.name, "incarnation": "x", "challenge": gateway_nonce.hex(),
               "proof": prove(WRONG_KEY, gateway_nonce, rogue.name, "worker").hex()}
    await rogue.send_raw(encode(Command.READY, "", payload, rogue.session.sign))


def test_rogue_worker_with_wrong_key_is_rejected_logged_and_never_gets_a_request(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        rogue = FakeWorker(broker.endpoint, key=WRONG_KEY)
        with pytest.raises(AssertionError):
            await rogue.ready()  # the gateway's proof does not check out under the rogue's key
        await _answer_with_wrong_key(rogue)  # it answers anyway
        await wait_until_async(lambda: "bad_proof" in _reasons(events), 2, "a bad_proof link_auth_failed event")
        assert not broker.worker("openai").up
        with pytest.raises(errors.Unavailable):
            await _collect(broker.call("openai", Op.CHAT, {}, 2.0))
        await rogue.nothing_but({Command.CHALLENGE}, 0.3)
        rogue.close()

    run_gateway(tmp_path, scenario)


def test_impostor_of_a_live_worker_never_receives_its_requests(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        real = FakeWorker(broker.endpoint)
        await real.ready()
        rogue = FakeWorker(broker.endpoint, key=WRONG_KEY)  # claims "openai" too
        await _answer_with_wrong_key(rogue)
        await wait_until_async(lambda: _reasons(events) == ["bad_proof"], 2, "exactly one bad_proof event")
        task = asyncio.create_task(_collect(broker.call("openai", Op.CHAT, {"n": 1}, 3.0)))
        request = await real.expect(Command.REQUEST)
        await real.send(Command.REPLY, request.request_id, {"ok": True})
        assert await task == [{"ok": True}]
        await rogue.nothing_but(set(), 0.2)
        real.close()
        rogue.close()

    run_gateway(tmp_path, scenario)


def test_replayed_ready_is_rejected(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        real = FakeWorker(broker.endpoint)
        await real.ready()
        captured = real.last_ready
        # Replayed verbatim on another connection, then after a fresh HELLO of its own.
        attacker = FakeWorker(broker.endpoint)
        await attacker.send_raw(captured)
        await wait_until_async(lambda: _reasons(events) == ["replayed_nonce"], 2, "exactly one replayed_nonce event")
        await attacker.hello()
        await attacker.send_raw(captured)
        await wait_until_async(lambda: len(_reasons(events)) == 2, 2, "two link_auth_failed events")
        assert _reasons(events) == ["replayed_nonce", "replayed_nonce"]
        assert [name for name, _ in events].count("worker_ready") == 1
        real.close()
        attacker.close()

    run_gateway(tmp_path, scenario)


def test_replayed_hello_nonce_gets_no_challenge(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        worker = FakeWorker(broker.endpoint)
        nonce, _ = await worker.hello()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(worker.hello(nonce), 0.5)
        assert _reasons(events) == ["replayed_nonce"]
        worker.close()

    run_gateway(tmp_path, scenario)


def test_unknown_identity_is_rejected_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        stranger = FakeWorker(broker.endpoint, name="mallory")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stranger.hello(), 0.5)
        assert events == [("link_auth_failed", {"reason": "unknown_identity", "worker": "mallory",
                                                "authenticated_as": None, "suppressed": None})]
        stranger.close()

    with caplog.at_level(logging.WARNING, logger="gateway.broker"):
        run_gateway(tmp_path, scenario)
    assert any(r.getMessage() == "link_auth_failed" and getattr(r, "reason", None) == "unknown_identity"
               for r in caplog.records)


def test_bad_missing_and_replayed_signatures_are_dropped(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        worker = FakeWorker(broker.endpoint)
        await worker.ready()
        task = asyncio.create_task(_collect(broker.call("openai", Op.CHAT, {}, 3.0)))
        request = await worker.expect(Command.REQUEST)
        assert worker.session is not None
        good = encode(Command.REPLY, request.request_id, {"fine": True}, worker.session.sign)
        parts = unpack(good)
        await worker.send_raw([pack([*parts[:3], b'{"fine":false}', parts[4]])])  # payload changed
        await worker.send_raw([pack([*parts[:4], b""])])  # signature removed
        await wait_until_async(lambda: len(_reasons(events)) == 2, 2, "two link_auth_failed events")
        assert not task.done()
        await worker.send_raw(good)
        assert await task == [{"fine": True}]
        await worker.send_raw(good)  # the very same message again
        await wait_until_async(lambda: len(_reasons(events)) == 3, 2, "three link_auth_failed events")
        assert _reasons(events) == ["bad_signature", "missing_signature", "replayed_message"]
        worker.close()

    run_gateway(tmp_path, scenario)


def test_event_hook_sees_the_worker_lifecycle(tmp_path: Path) -> None:
    async def scenario(broker: WorkerBroker, events: Events) -> None:
        worker = FakeWorker(broker.endpoint)
        await worker.ready()
        await worker.restart()
        await wait_until_async(lambda: events[-1][0] == "worker_ready", 2, "the last event is worker_ready")
        worker.close()  # silent from now on
        await wait_until_async(lambda: events[-1][0] == "worker_down", 2, "the last event is worker_down")
        assert [n for n, _ in events] == ["worker_ready", "worker_restarted", "worker_ready", "worker_down"]
        assert events[-1][1]["worker"] == "openai" and events[-1][1]["reason"]

    run_gateway(tmp_path, scenario)


# ---- the pure pieces ---------------------------------------------------------------------


def test_challenge_is_single_use_and_expires() -> None:
    link = GatewayLink(LINK_KEY, PROVIDERS, curve=False, handshake_timeout_s=1.0)
    worker = WorkerLink("openai", LINK_KEY)
    hello = worker.hello(0.0)
    assert hello is not None
    challenge = link.on_hello(b"route", decode(hello).payload, None, now=0.0)
    proof = worker.on_challenge(decode(challenge).payload, 0.0)
    assert proof is not None
    ready = worker.frames(Command.READY, "", {"provider": "openai", **proof})
    assert ready is not None
    with pytest.raises(LinkRejected) as caught:
        link.on_ready(b"route", decode(ready).payload, ready, None, now=5.0)
    assert caught.value.reason == "handshake_expired"
    with pytest.raises(LinkRejected) as caught:
        link.on_ready(b"route", decode(ready).payload, ready, None, now=0.5)  # the same answer, in time now
    assert caught.value.reason == "replayed_nonce"


def test_worker_accepts_the_old_session_only_until_the_new_one_speaks() -> None:
    gateway = GatewayLink(LINK_KEY, PROVIDERS, curve=False)
    worker = WorkerLink("openai", LINK_KEY)

    def handshake(now: float) -> None:
        hello = worker.hello(now, force=True)
        assert hello is not None
        proof = worker.on_challenge(decode(gateway.on_hello(b"r", decode(hello).payload, None, now)).payload, now)
        assert proof is not None
        ready = worker.frames(Command.READY, "", {"provider": "openai", **proof})
        assert ready is not None
        gateway.on_ready(b"r", decode(ready).payload, ready, None, now)

    def to_worker() -> list[bytes]:
        frames = gateway.frames_to("openai", Command.HEARTBEAT)
        assert frames is not None
        return frames[1:]  # without the route

    handshake(0.0)
    sent_before = [to_worker(), to_worker()]
    handshake(1.0)  # the worker moves to a new session; the gateway's older messages are still in flight
    assert worker.admit(sent_before[0])
    assert worker.admit(to_worker())  # the first message under the new session...
    assert not worker.admit(sent_before[1])  # ...ends the old one


def test_failure_reports_are_throttled_with_a_count() -> None:
    throttle = FailureThrottle(interval_s=1.0)
    key = ("bad_signature", "openai")
    assert throttle.admit(key, 0.0) == 0
    assert [throttle.admit(key, t) for t in (0.1, 0.2, 0.3)] == [None, None, None]
    assert throttle.admit(("bad_signature", "anthropic"), 0.3) == 0
    assert throttle.admit(key, 1.5) == 3


# ---- the worker refuses gateways that cannot prove themselves ------------------------------


def _worker_settings(tmp_path: Path) -> Settings:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    return Settings(config_dir=tmp_path, run_dir=run_dir, log_dir=tmp_path / "logs", heartbeat_s=0.1, liveness=3)


async def _running(runtime: WorkerRuntime) -> asyncio.Task[None]:
    task = asyncio.create_task(runtime.run())
    await asyncio.sleep(0)  # one loop turn: the runtime's task starts (not a wait for time)
    return task


async def _stop(runtime: WorkerRuntime, task: asyncio.Task[None]) -> None:
    runtime._stopping.set()
    await asyncio.wait_for(task, 5.0)


def test_worker_does_not_serve_a_gateway_impostor(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = _worker_settings(tmp_path)

    async def main() -> None:
        impostor = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        impostor.bind(settings.worker_endpoint)
        runtime = WorkerRuntime("openai", None, None, settings, link_key=LINK_KEY)
        task = await _running(runtime)
        try:
            route, *hello = await asyncio.wait_for(impostor.recv_multipart(), 3.0)
            nonce = bytes.fromhex(decode(hello).payload["nonce"])
            fake = {"nonce": new_nonce().hex(), "for": nonce.hex(), "proof": prove(WRONG_KEY, nonce, "openai",
                                                                                    "gateway").hex()}
            await impostor.send_multipart([route, *encode(Command.CHALLENGE, "", fake)])
            guess = LinkSession(WRONG_KEY, "openai", nonce, bytes.fromhex(fake["nonce"]), "gateway")
            request = {"op": "chat", "request": {}, "timeout_s": 5}
            await impostor.send_multipart([route, *encode(Command.REQUEST, "r1", request, guess.sign)])
            await impostor.send_multipart([route, *encode(Command.REQUEST, "r2", request)])
            # Only new HELLOs may come back: no READY, no ACCEPTED, no ERROR.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.6):
                    while True:
                        _, *frames = await impostor.recv_multipart()
                        assert decode(frames).command is Command.HELLO
        finally:
            await _stop(runtime, task)
            impostor.close(linger=0)

    with caplog.at_level(logging.WARNING, logger="workers.link"):
        asyncio.run(main())
    reasons = {getattr(r, "reason", None) for r in caplog.records if r.getMessage() == "link_auth_failed"}
    assert {"bad_gateway_proof", "unknown_session", "missing_signature"} <= reasons


def test_worker_serves_a_verified_gateway_and_rehandshakes_after_it_restarts(tmp_path: Path) -> None:
    settings = _worker_settings(tmp_path)

    def gateway() -> WorkerBroker:
        return WorkerBroker(settings.worker_endpoint, link_key=LINK_KEY, workers=PROVIDERS,
                            heartbeat_s=0.1, liveness=3, ready_wait_s=3.0)

    async def call_once(broker: WorkerBroker) -> None:
        # An unconfigured worker answers every call with its own "configure me" error.
        with pytest.raises(errors.Unavailable) as caught:
            await _collect(broker.call("openai", Op.CHAT, {}, 3.0))
        assert "operator must configure" in caught.value.message

    async def main() -> None:
        runtime = WorkerRuntime("openai", None, None, settings, link_key=LINK_KEY)
        task = await _running(runtime)
        try:
            first = gateway()
            await first.start()
            await call_once(first)
            incarnation = first.worker("openai").incarnation
            await first.stop()
            second = gateway()  # same endpoint, new process state: no sessions at all
            await second.start()
            await call_once(second)
            assert second.worker("openai").incarnation == incarnation  # the worker never restarted
            await second.stop()
        finally:
            await _stop(runtime, task)

    asyncio.run(main())


# ---- tcp:// with CurveZMQ ------------------------------------------------------------------


def _tcp_endpoint() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_curve_worker_with_its_key_is_served(tmp_path: Path) -> None:
    curve_dir = make_curve_dir(tmp_path / "curve")

    async def scenario(broker: WorkerBroker, events: Events) -> None:
        worker = FakeWorker(broker.endpoint, curve=load_curve_client(curve_dir, "openai"))
        await worker.ready()
        task = asyncio.create_task(_collect(broker.call("openai", Op.CHAT, {}, 3.0)))
        request = await worker.expect(Command.REQUEST)
        await worker.send(Command.REPLY, request.request_id, {"ok": 1})
        assert await task == [{"ok": 1}]
        worker.close()

    run_gateway(tmp_path, scenario, endpoint=_tcp_endpoint(), curve=load_curve_server(curve_dir))


def test_curve_worker_with_an_unknown_key_cannot_register(tmp_path: Path) -> None:
    curve_dir = make_curve_dir(tmp_path / "curve")
    stray = stray_curve_keys(curve_dir, tmp_path / "stray")

    async def scenario(broker: WorkerBroker, events: Events) -> None:
        worker = FakeWorker(broker.endpoint, curve=stray)  # right link key, unknown CURVE key
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(worker.hello(), 0.5)
        assert "unknown_curve_key" in _reasons(events)
        assert not broker.worker("openai").up
        worker.close()

    run_gateway(tmp_path, scenario, endpoint=_tcp_endpoint(), curve=load_curve_server(curve_dir))


def test_curve_worker_claiming_another_provider_is_dropped(tmp_path: Path) -> None:
    curve_dir = make_curve_dir(tmp_path / "curve")

    async def scenario(broker: WorkerBroker, events: Events) -> None:
        # A genuine anthropic key (and the link key) speaking as openai.
        liar = FakeWorker(broker.endpoint, name="openai", curve=load_curve_client(curve_dir, "anthropic"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(liar.ready(), 0.5)
        failures = [f for n, f in events if n == "link_auth_failed"]
        assert failures[0]["reason"] == "identity_mismatch"
        assert (failures[0]["worker"], failures[0]["authenticated_as"]) == ("openai", "anthropic")
        assert not broker.worker("openai").up
        liar.close()

    run_gateway(tmp_path, scenario, endpoint=_tcp_endpoint(), curve=load_curve_server(curve_dir))


def test_tcp_without_curve_is_refused() -> None:
    with pytest.raises(ValueError, match="CurveZMQ"):
        WorkerBroker("tcp://127.0.0.1:5555", link_key=LINK_KEY, workers=PROVIDERS)

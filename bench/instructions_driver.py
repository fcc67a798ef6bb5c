"""The gateway side of ``python -m bench instructions``: a real broker feeding one worker.

Run by ``bench.instructions`` as ``python -m bench.instructions_driver PROVIDER MODEL CALLS
WARMUP`` (possibly under callgrind), with the worker link settings in its environment.
It plays the gateway's per-call path that the broker and composition own:
``WorkerBroker.call`` to the worker over the signed ZeroMQ link, then
``compose.chat_output`` and ``compose.success_result`` on the reply, as the service does.

It talks to its parent over stdin/stdout, one line each way, so the parent can zero and
dump callgrind's counters around exactly the measured calls::

    driver -> "ready <op>"   warm-up of <op> done; waiting
    parent -> "go"           the counters are zeroed
    driver -> "done <op>"    the measured calls are over; waiting
    parent -> "next"         the counters are dumped
"""

from __future__ import annotations

import asyncio
import sys
import time

import uvloop

from gateway.broker import WorkerBroker
from gateway.compose import chat_output, success_result
from gateway.router import Route
from shared.link_keys import read_link_key
from shared.messages import Op
from shared.models import ChatRequest, Message, TextDelta
from shared.settings import Settings

__all__ = ["OPS", "main"]

# The measured operations, in order, and how the parent names them.
OPS: dict[str, Op] = {"chat": Op.CHAT, "chatStream": Op.CHAT_STREAM}
_CALL_TIMEOUT_S = 120.0  # generous: under callgrind a call runs ~50x slower
_UP_WAIT_S = 300.0


async def _one(broker: WorkerBroker, route: Route, op: Op, index: int) -> None:
    """One call as the service makes it: the broker's events, then the composed result."""
    request = ChatRequest(model=route.model, messages=[Message("user", f"Benchmark call {index}: please say hello")],
                          stream=op is Op.CHAT_STREAM)
    started = time.monotonic()
    chunks = 0
    async for event in broker.call(route.provider, op, request.to_wire(), _CALL_TIMEOUT_S):
        if isinstance(event, TextDelta):
            chunks += 1
            continue
        output = chat_output(event, route, "bench", (time.monotonic() - started) * 1000,
                             chunks if op is Op.CHAT_STREAM else None)
        success_result(output)


async def _line(expected: str) -> None:
    got = (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()
    if got != expected:
        raise SystemExit(f"instructions driver: expected {expected!r} from the parent, got {got!r}")


async def _wait_up(broker: WorkerBroker, provider: str) -> None:
    deadline = time.monotonic() + _UP_WAIT_S
    while not broker.worker(provider).up:
        if time.monotonic() > deadline:
            raise SystemExit(f"instructions driver: the {provider} worker did not register")
        await asyncio.sleep(0.2)


async def drive(provider: str, model: str, calls: int, warmup: int) -> None:
    """Warm up, then run ``calls`` calls of each op between the parent's counter resets and dumps."""
    settings = Settings.from_env()
    broker = WorkerBroker(settings.worker_endpoint, link_key=read_link_key(settings.link_key_file),
                          workers=[provider], heartbeat_s=settings.heartbeat_s, liveness=settings.liveness)
    await broker.start()
    try:
        await _wait_up(broker, provider)
        route = Route(provider=provider, model=model, reason="default")
        for name, op in OPS.items():
            for index in range(warmup):
                await _one(broker, route, op, index)
            print(f"ready {name}", flush=True)
            await _line("go")
            for index in range(calls):
                await _one(broker, route, op, index)
            print(f"done {name}", flush=True)
            await _line("next")
    finally:
        await broker.stop()


def main(argv: list[str]) -> int:
    provider, model, calls, warmup = argv[0], argv[1], int(argv[2]), int(argv[3])
    uvloop.run(drive(provider, model, calls, warmup))  # the gateway's loop (D14)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

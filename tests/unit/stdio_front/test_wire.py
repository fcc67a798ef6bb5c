"""The STDIO front end's stdout: it knows when the client has read what was written."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator

import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from stdio_front.wire import PacedWrites, Wire

Pair = tuple[int, Callable[[int], bytes]]  # (our descriptor, read n bytes at the client's end)


@pytest.fixture(params=["pipe", "socket"])
def wire_pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if request.param == "pipe":  # how Python's SDK launches a server
        reader, writer = os.pipe()
        yield writer, lambda n: os.read(reader, n)
        os.close(reader)
        os.close(writer)
    else:  # how Node's child_process does
        ours, theirs = socket.socketpair()
        yield ours.fileno(), theirs.recv
        ours.close()
        theirs.close()


def test_unread_counts_what_the_client_has_not_read(wire_pair: Pair) -> None:
    fd, read = wire_pair
    wire = Wire(fd)

    async def scenario() -> None:
        await wire.write('{"jsonrpc":"2.0","method":"notifications/progress"}\n')
        await wire.flush()
        assert wire.flushed == 1 and (wire.unread() or 0) > 0
        read(4096)
        assert wire.unread() == 0

    asyncio.run(scenario())


def test_delivered_waits_for_the_client_to_read(wire_pair: Pair) -> None:
    fd, read = wire_pair
    wire = Wire(fd)

    async def scenario() -> float:
        await wire.write("x" * 100 + "\n")
        await wire.flush()
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, read, 4096)
        started = time.monotonic()
        await wire.delivered(1, cap_s=5.0)
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert 0.15 < waited < 4.0, waited


def test_delivered_gives_up_at_its_cap_when_nobody_reads(wire_pair: Pair) -> None:
    fd, _ = wire_pair
    wire = Wire(fd)

    async def scenario() -> float:
        await wire.write("x\n")
        await wire.flush()
        started = time.monotonic()
        await wire.delivered(1, cap_s=0.1)
        return time.monotonic() - started

    assert 0.09 < asyncio.run(scenario()) < 2.0


def test_a_file_is_not_a_wire_it_can_ask() -> None:
    with tempfile.TemporaryFile() as file:
        assert Wire(file.fileno()).unread() is None


class _Recorder:
    """Stands in for the SDK writer's stream: writes each message to the wire as it is sent."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.sent: list[tuple[str, int | None]] = []  # (kind, bytes unread by the client when it was sent)

    async def send(self, item: SessionMessage) -> None:
        self.sent.append((type(item.message).__name__, self.wire.unread()))
        await self.wire.write(item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n")
        await self.wire.flush()


def test_a_response_after_progress_waits_until_the_client_read_it(wire_pair: Pair) -> None:
    fd, read = wire_pair
    wire = Wire(fd)
    recorder = _Recorder(wire)
    paced = PacedWrites(recorder, wire)
    progress = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/progress",
                                         params={"progressToken": 1, "progress": 1, "message": "hi"})
    response = types.JSONRPCResponse(jsonrpc="2.0", id=1, result={})

    async def scenario() -> None:
        await paced.send(SessionMessage(progress))
        asyncio.get_running_loop().call_later(0.1, read, 4096)
        await paced.send(SessionMessage(response))

    asyncio.run(scenario())
    assert recorder.sent[0][0] == "JSONRPCNotification"
    assert recorder.sent[1] == ("JSONRPCResponse", 0)  # the notification had been read first

"""The front door's protocol driven byte by byte: head budget, header count, target length, stalls, cap.

The protocol is uvicorn's real httptools protocol subclass with a real parser; only the
socket is replaced by a transport that records what would be written.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from gateway.front_door import FD_RESERVE, FrontDoor, FrontDoorProtocol
from shared.settings import HttpLimits, SecuritySettings
from tests.polling import wait_until_async

LIMITS = HttpLimits(max_url_bytes=100, max_headers=5, max_header_bytes=400, header_timeout_s=2.0,
                    body_timeout_s=4.0, keepalive_timeout_s=1, max_connections=3)


class RecordingTransport(asyncio.Transport):
    """Collects writes; close() is remembered, as a socket transport would stop reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8765)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Door:
    """A FrontDoor with a shared server state, making connections on demand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: HttpLimits = LIMITS, open_files: int = 10_000):
        self.loop = loop
        self.door = FrontDoor(limits, open_files)
        self.state = ServerState()
        self.config = uvicorn.Config(_ok, http=self.door.protocol, log_config=None, lifespan="off")

    def connect(self) -> tuple[FrontDoorProtocol, RecordingTransport]:
        protocol = self.door.protocol(config=self.config, server_state=self.state, app_state={}, _loop=self.loop)
        transport = RecordingTransport()
        protocol.connection_made(transport)
        return protocol, transport

    def serve_until(self, condition: Callable[[], object], what: str) -> None:
        """Run the loop (the application's request tasks) until ``condition`` holds."""
        self.loop.run_until_complete(wait_until_async(condition, 5, what, interval_s=0.001))


def _head(path: str = "/", headers: int = 1, extra: bytes = b"") -> bytes:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(headers - 1))
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n".encode() + fields + extra + b"\r\n"


def test_a_head_within_the_budget_is_served_when_it_arrives_with_a_large_body(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    protocol, transport = door.connect()
    body = b"x" * 5000
    protocol.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + body)
    door.serve_until(lambda: transport.written, "the first response")
    assert transport.written.startswith(b"HTTP/1.1 200") and not transport.closed
    protocol.data_received(_head())  # the next request on the same connection has a fresh budget
    door.serve_until(lambda: transport.written.count(b"HTTP/1.1 ") == 2, "the second response")
    assert transport.written.count(b"HTTP/1.1 200") == 2


def test_a_head_past_the_budget_gets_431_without_the_parser_seeing_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    protocol, transport = door.connect()
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ")
    protocol.data_received(b"a" * 10_000_000)
    assert transport.written.startswith(b"HTTP/1.1 431 ") and transport.closed
    assert b"400 bytes" in transport.written
    assert len(protocol.headers) == 1  # X-Big never reached the application's header list
    assert door.door.counts.head_too_large == 1


def test_too_many_headers_get_431_and_a_long_target_414(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    within, within_transport = door.connect()
    within.data_received(_head(headers=5))
    many, many_transport = door.connect()
    many.data_received(_head(headers=6))
    long, long_transport = door.connect()
    long.data_received(_head("/" + "a" * 100))
    door.serve_until(lambda: within_transport.written, "the response within the limits")
    assert within_transport.written.startswith(b"HTTP/1.1 200")
    assert many_transport.written.startswith(b"HTTP/1.1 431 ") and many_transport.closed
    assert long_transport.written.startswith(b"HTTP/1.1 414 ") and long_transport.closed
    assert (door.door.counts.too_many_headers, door.door.counts.url_too_long) == (1, 1)


def test_past_the_cap_a_connection_gets_503_and_is_closed(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    accepted = [door.connect() for _ in range(3)]
    refused, transport = door.connect()
    assert transport.written.startswith(b"HTTP/1.1 503 ") and transport.closed
    refused.connection_lost(None)  # uvicorn's own clean-up runs on a refused connection
    assert all(not t.closed for _, t in accepted) and len(door.state.connections) == 3
    accepted[0][0].data_received(_head())
    door.serve_until(lambda: accepted[0][1].written, "the response on an accepted connection")
    assert accepted[0][1].written.startswith(b"HTTP/1.1 200")


def test_stalled_means_no_request_in_flight_and_no_complete_head_in_time(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    silent, _ = door.connect()
    trickle, _ = door.connect()
    trickle.data_received(b"GET / HTTP/1.1\r\nHo")
    served, served_transport = door.connect()
    served.data_received(_head())
    door.serve_until(lambda: served_transport.written, "the served connection's response")
    now = loop.time()
    assert [p.stalled(now + 1.0, LIMITS) for p in (silent, trickle, served)] == [False, False, False]
    # Later: the silent and trickling ones are stalled; the served, idle one is left to keep-alive.
    assert [p.stalled(now + 2.5, LIMITS) for p in (silent, trickle, served)] == [True, True, False]
    served.data_received(b"\r\n")  # a stray CRLF cancels the keep-alive timer: back under the header timeout
    assert served.stalled(now + 2.5, LIMITS)
    assert door.door.close_stalled(door.state.connections, now + 2.5) == 3


def test_a_body_not_complete_within_the_body_timeout_is_stalled(loop: asyncio.AbstractEventLoop) -> None:
    door = Door(loop)
    slow, slow_transport = door.connect()
    slow.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    now = loop.time()
    assert not slow.stalled(now + 3.0, LIMITS)  # past the header timeout, but the head is complete
    assert slow.stalled(now + 4.5, LIMITS)
    slow.data_received(b"x" * 90)  # the body completes: the request is no longer waiting on the client
    door.serve_until(lambda: slow_transport.written, "the response once the body is complete")
    assert not slow.stalled(now + 4.5, LIMITS)


def test_the_cap_stays_below_the_open_file_limit() -> None:
    assert FrontDoor(HttpLimits(max_connections=2048), open_files=1024).cap == 1024 - FD_RESERVE
    assert FrontDoor(HttpLimits(max_connections=2048), open_files=20_000).cap == 2048


def test_the_soft_open_file_limit_is_raised_to_the_hard_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard <= 256:
        pytest.skip("hard open-file limit too low to lower the soft one")
    script = ("import resource; from gateway.front_door import raise_open_file_limit; "
              "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
              "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(hard), str(hard)]


def test_http_limits_come_from_llmc_variables_and_round_trip() -> None:
    env = {"LLMC_MAX_URL_BYTES": "4096", "LLMC_MAX_HEADERS": "50", "LLMC_MAX_HEADER_BYTES": "16384",
           "LLMC_HEADER_TIMEOUT_S": "2.5", "LLMC_BODY_TIMEOUT_S": "20", "LLMC_KEEPALIVE_TIMEOUT_S": "3",
           "LLMC_MAX_CONNECTIONS": "500"}
    limits = SecuritySettings.from_env(env).http
    assert limits == HttpLimits(max_url_bytes=4096, max_headers=50, max_header_bytes=16384, header_timeout_s=2.5,
                                body_timeout_s=20.0, keepalive_timeout_s=3, max_connections=500)
    assert SecuritySettings.from_env(SecuritySettings(http=limits).to_env()).http == limits
    assert SecuritySettings.from_env({}).http == HttpLimits()


@pytest.mark.parametrize("env", [{"LLMC_MAX_HEADERS": "0"}, {"LLMC_MAX_HEADER_BYTES": "lots"},
                                 {"LLMC_KEEPALIVE_TIMEOUT_S": "1.5"}, {"LLMC_HEADER_TIMEOUT_S": "-1"}])
def test_a_bad_limit_names_its_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        SecuritySettings.from_env(env)

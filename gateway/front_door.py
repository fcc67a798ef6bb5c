"""The HTTP front door: limits that hold before a request reaches the application.

uvicorn's httptools protocol limits neither the size of a request head nor how long a
client may take to send it, and it accepts connections until the process runs out of
file descriptors. ``FrontDoor`` adds, with a few integer comparisons per request:

* a byte budget for the request line plus headers, counted in ``data_received`` before
  the parser sees the bytes (so a 100 MiB header costs at most one read past the
  budget), then ``431`` and close;
* a header-field count and a request-target length, checked once per request when the
  head is complete (``431`` / ``414``);
* a header timeout: a connection with no request in flight that has not delivered a
  complete head within ``header_timeout_s`` of opening (or of its last response) is
  closed by a sweeper that runs about once a second, so slowloris trickles and silent
  connections end; idle keep-alive connections end after uvicorn's keep-alive timeout;
* a body timeout: a request whose body is not complete ``body_timeout_s`` after its head
  is closed by the same sweeper (a trickled body would otherwise hold a connection and a
  task for ever, and enough of them would hold the connection cap);
* a cap on open connections below the open-file limit: past it a new connection gets
  ``503`` and is closed at once, while accepted connections keep working.

Why a subclass and a byte count in front of the parser (not another parser):
docs/decisions.md, the front-door entry; runbook/security-http.md for the settings.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.logs import log_event
from shared.settings import HttpLimits

__all__ = ["FD_RESERVE", "FrontDoor", "FrontDoorProtocol", "RefusalCounts", "raise_open_file_limit"]

log = logging.getLogger("gateway.front_door")

# Descriptors kept free for the gateway itself: worker link sockets, log and audit
# files, the registry and key reads. Connections may use the rest.
FD_RESERVE = 128
# When the hard limit is "unlimited" (not on Linux, where nr_open bounds it), ask for this.
_UNLIMITED_TARGET = 1 << 20
_SUMMARY_EVERY_S = 60.0


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.

    supervisord's ``minfds`` only guarantees a floor (1024), and many systems start
    processes with a soft limit of 1024 under a much higher hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. a hard limit above the kernel's nr_open
            return soft
        return target
    return soft


def _response(status: int, reason: str, text: str) -> bytes:
    body = f"{text}\n".encode("ascii")
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


@dataclass
class RefusalCounts:
    """Connections the front door ended since start; the sweeper logs the growth now and then."""

    busy: int = 0
    head_too_large: int = 0
    too_many_headers: int = 0
    url_too_long: int = 0
    too_slow: int = 0

    def snapshot(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class FrontDoorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the front door's limits; ``FrontDoor.protocol`` binds the numbers."""

    door: ClassVar[FrontDoor]
    max_head: ClassVar[int]
    max_headers: ClassVar[int]
    max_url: ClassVar[int]

    # Bytes of the current request head seen so far; -1 once the head is complete (body or
    # response under way). Reset to 0 when a message completes: what follows is the next head.
    _head_bytes: int = 0
    # loop.time() when the connection opened, the last head completed, or the last response ended.
    _since: float = 0.0
    # The response to send instead of uvicorn's 400 when a limit stopped the parser.
    _refusal: bytes = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        door = self.door
        if len(self.connections) >= door.cap:
            # uvicorn's connection_lost closes self.transport, so it must be set.
            self.transport = transport
            door.counts.busy += 1
            transport.write(door.busy)
            transport.close()
            return
        super().connection_made(transport)
        self._since = self.loop.time()

    def data_received(self, data: bytes) -> None:
        used = self._head_bytes
        if used < 0:
            super().data_received(data)
            return
        room = self.max_head - used
        if len(data) <= room:
            self._head_bytes = used + len(data)
            super().data_received(data)
            return
        # Past the budget: the parser gets only what fits, and the head must end inside it.
        self._head_bytes = self.max_head
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._head_bytes == self.max_head:  # no head completed in what fitted
            self.door.counts.head_too_large += 1
            self._refuse(self.door.head_too_large)
        else:
            self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._head_bytes = -1
        self._since = self.loop.time()
        if len(self.headers) > self.max_headers or len(self.url) > self.max_url:
            self._stop_parser()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._since = self.loop.time()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers any parser stop with 400; a stop for a limit gets its own status."""
        if self._refusal:
            self._refuse(self._refusal)
        else:
            super().send_400_response(msg)

    def stalled(self, now: float, limits: HttpLimits) -> bool:
        """True when the connection is slower than the limits allow.

        * No request in flight and no complete head within ``header_timeout_s`` of opening
          or of the last response. A connection that has sent nothing since its last
          response is left to the keep-alive timeout; any byte after it (a bare CRLF, or the
          rest of a body the response did not wait for, both of which cancel uvicorn's
          keep-alive timer) puts it back under the header timeout.
        * A request in flight whose body is not complete ``body_timeout_s`` after its head.
        """
        cycle = self.cycle
        if cycle is None:
            return now - self._since > limits.header_timeout_s
        if not cycle.response_complete:
            return self._head_bytes < 0 and now - self._since > limits.body_timeout_s
        return self._head_bytes != 0 and now - self._since > limits.header_timeout_s

    def _stop_parser(self) -> None:
        door = self.door
        if len(self.url) > self.max_url:
            door.counts.url_too_long += 1
            self._refusal = door.url_too_long
        else:
            door.counts.too_many_headers += 1
            self._refusal = door.too_many_headers
        # Raising inside a parser callback makes httptools stop; uvicorn then calls send_400_response.
        raise _HeadRefused

    def _refuse(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


class _HeadRefused(Exception):
    """A request head broke a limit; raised inside the parser to stop it."""


class FrontDoor:
    """The limits of one gateway process, its protocol class for uvicorn, and the sweeper."""

    def __init__(self, limits: HttpLimits, open_files: int) -> None:
        self.limits = limits
        self.cap = max(1, min(limits.max_connections, open_files - FD_RESERVE))
        self.counts = RefusalCounts()
        self.busy = _response(503, "Service Unavailable", "too many open connections; try again shortly")
        self.head_too_large = _response(
            431, "Request Header Fields Too Large",
            f"the request line and headers exceed {limits.max_header_bytes} bytes")
        self.too_many_headers = _response(
            431, "Request Header Fields Too Large", f"more than {limits.max_headers} header fields")
        self.url_too_long = _response(
            414, "URI Too Long", f"the request target exceeds {limits.max_url_bytes} bytes")
        self.protocol = self._bind()

    def _bind(self) -> type[FrontDoorProtocol]:
        class BoundFrontDoorProtocol(FrontDoorProtocol):
            pass

        BoundFrontDoorProtocol.door = self
        BoundFrontDoorProtocol.max_head = self.limits.max_header_bytes
        BoundFrontDoorProtocol.max_headers = self.limits.max_headers
        BoundFrontDoorProtocol.max_url = self.limits.max_url_bytes
        return BoundFrontDoorProtocol

    def close_stalled(self, connections: Iterable[Any], now: float) -> int:
        """Close every connection past the header or body timeout; returns how many."""
        closed = 0
        for conn in list(connections):
            if isinstance(conn, FrontDoorProtocol) and conn.stalled(now, self.limits):
                conn.transport.close()
                closed += 1
        self.counts.too_slow += closed
        return closed

    async def sweep(self, connections: Iterable[Any]) -> None:
        """Run until cancelled: close stalled connections, log what was refused (at most once a minute)."""
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.limits.header_timeout_s / 4, self.limits.body_timeout_s / 4)
        logged = self.counts.snapshot()
        last_log = float("-inf")
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            self.close_stalled(connections, now)
            if now - last_log >= _SUMMARY_EVERY_S:
                current = self.counts.snapshot()
                if current != logged:
                    grown = {name: current[name] - logged[name] for name in current}
                    log_event(log, "http_connections_refused", level=logging.WARNING, **grown)
                    logged, last_log = current, now

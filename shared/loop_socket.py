"""A ZeroMQ socket served by the running event loop's reader callback, no future per message.

``zmq.asyncio`` gives every send and receive a Future of its own and, for each one that has
to wait, registers and unregisters the socket's descriptor with the loop (two ``epoll_ctl``
calls) and re-polls the socket's events. Our hot path moves four messages per call (REQUEST,
ACCEPTED, REPLY and the poll after each), so that bookkeeping showed in both processes'
profiles. Here the descriptor is registered once, sends go straight out with ``NOBLOCK``,
and a receive only waits (on one future) when the socket is really empty.

ZeroMQ's descriptor is edge-triggered: it signals that the socket's state *may* have changed,
and any send or receive can consume that signal. So every wait re-checks ``EVENTS`` first,
and after each send a waiting receiver is woken if a message arrived meanwhile.

Not thread-safe, like the socket itself: use it only from the loop that created it, with one
task receiving (any number may send).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import zmq

__all__ = ["LoopSocket"]

# How long a sender waits for the socket to say it has room before trying again anyway. A
# ROUTER reports POLLOUT when *any* peer has room, so the edge alone can't be trusted to
# mean "the peer this message is for".
_SEND_RETRY_S = 0.005
# Plain ints: pyzmq's flag constants are enums, and `&` on them builds a new enum member
# each time; a few microseconds per call on a path that polls EVENTS five times per call.
_EVENTS, _RCVMORE, _NOBLOCK = int(zmq.EVENTS), int(zmq.RCVMORE), int(zmq.NOBLOCK)
_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
_NOBLOCK_MORE = _NOBLOCK | int(zmq.SNDMORE)


class LoopSocket:
    """``sock`` driven by the current loop; ``recv_multipart`` and ``send_multipart`` are async."""

    def __init__(self, sock: zmq.Socket[Any], *, copy: bool = True) -> None:
        self.sock = sock
        self._copy = copy
        self._loop = asyncio.get_running_loop()
        self._fd = cast(int, sock.getsockopt(zmq.FD))
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None
        self._loop.add_reader(self._fd, self._on_signal)

    def _events(self) -> int:
        return cast(int, self.sock.get(_EVENTS))

    def _on_signal(self) -> None:
        if self.sock.closed:
            return
        events = self._events()
        if events & _POLLIN:
            _wake(self._reader)
        if events & _POLLOUT:
            _wake(self._writer)

    async def recv_multipart(self) -> list[Any]:
        """The next message: ``bytes`` parts, or ``zmq.Frame`` parts when made with ``copy=False``."""
        while True:
            try:
                return self._recv_now()
            except zmq.Again:
                pass
            if self._events() & _POLLIN:
                continue  # arrived between the two calls: the edge may already be spent
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None

    def _recv_now(self) -> list[Any]:
        # pyzmq's recv_multipart, minus its enum flags: the parts of one message arrive
        # together, so only the first receive can raise Again.
        sock, copy = self.sock, self._copy
        parts = [sock.recv(_NOBLOCK, copy=copy)]
        while sock.get(_RCVMORE):
            parts.append(sock.recv(_NOBLOCK, copy=copy))
        return parts

    def send_now(self, frames: Sequence[bytes]) -> None:
        """Send or raise at once (``zmq.Again`` when the pipe is full, ``EHOSTUNREACH``...).

        One ``send`` per part, as pyzmq's ``send_multipart`` does, without its per-call
        checks and enum flags: ~4.8k fewer instructions per message. ZeroMQ checks room and
        the peer on the first part only, so only that one can raise.
        """
        sock = self.sock
        for part in frames[:-1]:
            sock.send(part, _NOBLOCK_MORE, copy=True)
        sock.send(frames[-1], _NOBLOCK, copy=True)
        self._after_send()

    async def send_multipart(self, frames: Sequence[bytes]) -> None:
        """Send, waiting while ZeroMQ has no room (high-water mark, or no peer yet for a DEALER)."""
        while True:
            try:
                self.send_now(frames)
                return
            except zmq.Again:
                pass
            if self._writer is None or self._writer.done():
                self._writer = self._loop.create_future()
            # Shared by every waiting sender; asyncio.wait leaves it alone on timeout.
            await asyncio.wait((self._writer,), timeout=_SEND_RETRY_S)

    def _after_send(self) -> None:
        # A send can swallow the descriptor's edge for a message that arrived meanwhile.
        if self._reader is not None and self._events() & _POLLIN:
            _wake(self._reader)

    def close(self, linger: int | None = None) -> None:
        if not self.sock.closed:
            self._loop.remove_reader(self._fd)
            self.sock.close(linger=linger)
        for waiter in (self._reader, self._writer):
            if waiter is not None and not waiter.done():
                waiter.cancel()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)

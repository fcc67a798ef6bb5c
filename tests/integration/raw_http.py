"""Raw-socket HTTP for the front-door tests: what an attacker sends, byte by byte, with timings."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Refusal", "connect", "get", "open_idle", "read_response", "stream_header", "wait_closed"]


def connect(port: int, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout_s)


def get(port: int, path: str = "/healthz", extra: bytes = b"") -> bytes:
    """A GET request head, keep-alive, with the Host the gateway accepts."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + extra + b"\r\n"


def read_response(sock: socket.socket, timeout_s: float = 5.0) -> tuple[int | None, bytes]:
    """(status, body) of one response; (None, b"") when the gateway closed or reset without one."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None, b""
    return int(head.split()[1]), body


def wait_closed(sock: socket.socket, limit_s: float) -> float | None:
    """Seconds until the peer closes ``sock`` (EOF or reset); None if it is still open after ``limit_s``.

    Bytes the gateway sends first (a 408 or 431) are read and ignored.
    """
    start = time.monotonic()
    while (left := limit_s - (time.monotonic() - start)) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        except TimeoutError:
            return None
    return None


@dataclass
class Refusal:
    """How one oversized head ended: after how long, after how many bytes, with what status."""

    seconds: float
    bytes_sent: int
    status: int | None  # None: closed or reset before a status line could be read
    refused: bool  # False: the whole header went out and nothing came back


def stream_header(port: int, total_bytes: int, chunk_bytes: int = 64 * 1024) -> Refusal:
    """Send one header of ``total_bytes`` in chunks, stopping as soon as the gateway answers or closes."""
    chunk = b"a" * chunk_bytes
    with contextlib.closing(connect(port)) as sock:
        start = time.monotonic()
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: ".encode())
        sent, answered = 0, False
        try:
            while sent < total_bytes and not answered:
                sock.sendall(chunk)
                sent += chunk_bytes
                answered = bool(select.select([sock], [], [], 0)[0])
        except OSError:  # reset or broken pipe: the gateway closed on us
            answered = True
        if not answered:  # everything sent: give the gateway a second to answer
            answered = bool(select.select([sock], [], [], 1.0)[0])
        seconds = time.monotonic() - start
        status = read_response(sock, 2.0)[0] if answered else None
    return Refusal(seconds, sent, status, answered)


@contextlib.contextmanager
def open_idle(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that connect and then say nothing; all closed on exit."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(connect(port))
        yield socks
    finally:
        for sock in socks:
            sock.close()

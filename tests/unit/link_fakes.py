"""Scripted peers for the worker link: a fake worker and a fake gateway that speak it by hand.

They use the shared primitives (``shared.link_auth``, ``shared.link_session``) directly,
so a test can make them misbehave one step at a time: a wrong key, a replayed READY, a
claim to be someone else.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth

from shared.link_auth import check, new_nonce, prove
from shared.link_keys import CurveClientKeys, load_curve_client
from shared.link_session import LinkSession
from shared.protocol import Command, Frame, decode, encode

LINK_KEY = os.urandom(32)
WRONG_KEY = os.urandom(32)


class FakeWorker:
    """A DEALER that speaks the protocol by hand, so each test scripts the worker's behaviour."""

    def __init__(self, endpoint: str, name: str = "openai", *, key: bytes = LINK_KEY,
                 curve: CurveClientKeys | None = None) -> None:
        self.endpoint, self.name, self.key, self.curve = endpoint, name, key, curve
        self.ctx = zmq.asyncio.Context.instance()
        self.incarnation = uuid.uuid4().hex
        self.session: LinkSession | None = None
        self.last_ready: list[bytes] = []
        self.sock = self._socket()

    def _socket(self) -> zmq.asyncio.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            sock.curve_secretkey = self.curve.secret
            sock.curve_publickey = self.curve.public
            sock.curve_serverkey = self.curve.server_public
        sock.connect(self.endpoint)
        return sock

    async def hello(self, nonce: bytes | None = None, provider: str | None = None) -> tuple[bytes, Frame]:
        """Send HELLO; return our nonce and the gateway's CHALLENGE."""
        nonce = nonce or new_nonce()
        await self.send_raw(encode(Command.HELLO, "", {"provider": provider or self.name, "nonce": nonce.hex()}))
        return nonce, await self.expect(Command.CHALLENGE)

    async def ready(self, **fields: Any) -> None:
        """The whole handshake; asserts the gateway proved itself, then answers with a signed READY."""
        nonce, challenge = await self.hello()
        gateway_nonce = bytes.fromhex(challenge.payload["nonce"])
        assert check(self.key, nonce, self.name, "gateway", bytes.fromhex(challenge.payload["proof"]))
        self.session = LinkSession(self.key, self.name, nonce, gateway_nonce, "worker")
        payload = {"provider": self.name, "kind": "openai", "capabilities": ["chat"], "status": "ready",
                   "incarnation": self.incarnation, "pid": 1, "models": [],
                   "challenge": gateway_nonce.hex(), "proof": prove(self.key, gateway_nonce, self.name, "worker").hex()}
        payload.update(fields)
        self.last_ready = encode(Command.READY, "", payload, self.session.sign)
        await self.send_raw(self.last_ready)

    async def restart(self) -> None:
        self.sock.close(linger=0)
        self.incarnation = uuid.uuid4().hex
        self.sock = self._socket()
        await self.ready()

    async def send(self, command: Command, rid: str = "", payload: Any = None) -> None:
        assert self.session is not None, "handshake first"
        await self.send_raw(encode(command, rid, payload, self.session.sign))

    async def send_raw(self, frames: list[bytes]) -> None:
        await self.sock.send_multipart(frames)

    async def expect(self, command: Command, timeout: float = 3.0) -> Frame:
        async with asyncio.timeout(timeout):
            while True:
                parts = await self.sock.recv_multipart()
                frame = decode(parts)
                if frame.command is not command:
                    continue
                if command not in (Command.CHALLENGE, Command.DISCONNECT):
                    assert self.session is not None and self.session.verify(parts) == "ok"
                return frame

    async def nothing_but(self, allowed: set[Command], for_s: float) -> None:
        """Assert that for ``for_s`` seconds only ``allowed`` commands arrive."""
        try:
            async with asyncio.timeout(for_s):
                while True:
                    frame = decode(await self.sock.recv_multipart())
                    assert frame.command in allowed, f"unexpected {frame.command.name}"
        except TimeoutError:
            pass

    def close(self) -> None:
        self.sock.close(linger=0)


def make_curve_dir(folder: Path, workers: tuple[str, ...] = ("openai", "anthropic")) -> Path:
    """A LLMC_CURVE_DIR as shared/link_keys.py documents it, secret certificates 0600."""
    (folder / "workers").mkdir(parents=True)
    folder.chmod(0o700)
    _, secret = zmq.auth.create_certificates(folder, "gateway")
    os.chmod(secret, 0o600)
    for name in workers:
        _, secret = zmq.auth.create_certificates(folder / "workers", name)
        os.chmod(secret, 0o600)
    return folder


def stray_curve_keys(curve_dir: Path, folder: Path) -> CurveClientKeys:
    """A well-formed worker keypair the gateway has never heard of."""
    (folder / "workers").mkdir(parents=True)
    _, secret = zmq.auth.create_certificates(folder / "workers", "stray")
    os.chmod(secret, 0o600)
    (folder / "gateway.key").write_bytes((curve_dir / "gateway.key").read_bytes())
    return load_curve_client(folder, "stray")

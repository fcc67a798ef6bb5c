"""CurveZMQ for a tcp:// worker endpoint: the gateway is a CURVE server that knows every worker key.

libzmq asks a ZAP handler (RFC 27) about each connecting client key. Ours accepts only
the keys under ``$LLMC_CURVE_DIR/workers/`` and answers with the provider name that key
belongs to as the ZAP User-Id, so every message from that connection is stamped with the
name its *key* proves. The broker then drops any message whose stamp differs from the
worker it claims to come from: a worker holding a valid key for ``anthropic`` cannot
speak as ``openai``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator
from zmq.utils import z85

from shared.link_keys import CurveServerKeys

__all__ = ["ZAP_DOMAIN", "WorkerKeyAuthenticator", "fingerprint", "make_curve_server", "user_id"]

ZAP_DOMAIN = "llm-caller-workers"
# pyzmq logs every ZAP decision with the client key at DEBUG; keep that out of our logs.
logging.getLogger("zmq.auth").setLevel(logging.WARNING)


def fingerprint(z85_key: bytes) -> str:
    """A short, stable name for a public key in logs (the key itself is not logged)."""
    return hashlib.sha256(z85_key).hexdigest()[:12]


class _KnownKeys:
    """pyzmq's credentials-provider protocol: ``callback(domain, z85 key) -> allowed``."""

    def __init__(self, workers: Mapping[bytes, str], on_denied: Callable[[bytes], None]) -> None:
        self._workers = workers
        self._on_denied = on_denied

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self._workers:
            return True
        self._on_denied(key)
        return False


class WorkerKeyAuthenticator(AsyncioAuthenticator):
    """A ZAP handler on the broker's context whose User-Id is the provider name of the key."""

    def __init__(self, context: zmq.asyncio.Context, keys: CurveServerKeys,
                 on_denied: Callable[[bytes], None]) -> None:
        super().__init__(context)
        self._workers = keys.workers
        self.start()
        self.configure_curve_callback(ZAP_DOMAIN, _KnownKeys(keys.workers, on_denied))

    def curve_user_id(self, client_public_key: bytes) -> str:
        # Called only for keys the callback accepted, so the lookup cannot miss.
        return self._workers[z85.encode(client_public_key)]


def make_curve_server(sock: zmq.Socket[Any], keys: CurveServerKeys) -> None:
    """Make ``sock`` (before bind) a CURVE server that consults our ZAP handler."""
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True
    sock.zap_domain = ZAP_DOMAIN.encode()


def user_id(frame: zmq.Frame) -> str | None:
    """The ZAP User-Id a received frame carries; None if the connection had none."""
    try:
        value = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return value if isinstance(value, str) else None

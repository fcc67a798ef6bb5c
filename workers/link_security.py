"""The worker's half of the authenticated link: it serves no gateway that has not proved itself.

The worker opens every session with HELLO and a fresh nonce; a CHALLENGE counts only if
its proof is over *that* nonce, made with the link key. Until then the worker has no
session, so it can verify nothing, and a REQUEST from an unproven gateway (an impostor
bound to the socket path or port) is dropped unread and logged.

Around a new handshake the gateway may still send a few messages signed under the
session it had before it saw our READY; the previous session stays valid for incoming
messages until the first message under the new one arrives.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from shared.link_auth import NONCE_BYTES, NonceCache, check, new_nonce, prove
from shared.link_keys import CurveClientKeys
from shared.link_session import FailureThrottle, LinkSession, from_hex, session_id_of
from shared.logs import log_event
from shared.protocol import Command, encode, logical

__all__ = ["WorkerLink", "make_curve_client"]

log = logging.getLogger("workers.link")

_PROOF_BYTES = 32


class WorkerLink:
    def __init__(self, name: str, link_key: bytes, *, hello_interval_s: float = 0.5) -> None:
        self.name = name
        self._key = link_key
        self.hello_interval_s = hello_interval_s
        self._pending: bytes | None = None  # the nonce of our latest HELLO
        self._pending_at = 0.0
        self._current: LinkSession | None = None
        self._previous: LinkSession | None = None
        self._gateway_nonces = NonceCache(ttl_s=600.0)
        self._throttle = FailureThrottle()

    @property
    def verified(self) -> bool:
        """Whether some gateway has proved it holds the link key (we have a session)."""
        return self._current is not None

    def hello(self, now: float, *, force: bool = False) -> list[bytes] | None:
        """HELLO frames with a fresh nonce; None if one went out moments ago (unless ``force``)."""
        if not force and self._pending is not None and now - self._pending_at < self.hello_interval_s:
            return None
        self._pending, self._pending_at = new_nonce(), now
        return encode(Command.HELLO, "", {"provider": self.name, "nonce": self._pending.hex()})

    def on_challenge(self, payload: Any, now: float) -> dict[str, str] | None:
        """Check a CHALLENGE; on success start the new session and return the READY's proof fields."""
        fields = payload if isinstance(payload, dict) else {}
        answered = from_hex(fields.get("for"), NONCE_BYTES)
        if self._pending is None or answered != self._pending:
            # It answers a HELLO we have since replaced (or none): nothing to prove, nothing to do.
            log_event(log, "stale_challenge_ignored", level=logging.DEBUG, provider=self.name)
            return None
        worker_nonce, self._pending = self._pending, None  # one answer per HELLO, pass or fail
        gateway_nonce = from_hex(fields.get("nonce"), NONCE_BYTES)
        proof = from_hex(fields.get("proof"), _PROOF_BYTES)
        if gateway_nonce is None or proof is None or not check(self._key, worker_nonce, self.name, "gateway", proof):
            self.failed("bad_gateway_proof")
            return None
        if not self._gateway_nonces.accept(gateway_nonce, now):
            self.failed("replayed_nonce")
            return None
        self._previous = self._current
        self._current = LinkSession(self._key, self.name, worker_nonce, gateway_nonce, "worker")
        return {"challenge": gateway_nonce.hex(), "proof": prove(self._key, gateway_nonce, self.name, "worker").hex()}

    def frames(self, command: Command, request_id: str = "", payload: Any = None) -> list[bytes] | None:
        """A message signed under the current session; None before any gateway has proved itself."""
        if self._current is None:
            return None
        return encode(command, request_id, payload, self._current.sign)

    def admit(self, frames: list[bytes]) -> bool:
        """Whether a gateway message is signed under our session; a failure is logged (throttled)."""
        session_id = session_id_of(logical(frames)[4])
        current, previous = self._current, self._previous
        verdict: str
        if current is not None and session_id == current.session_id:
            verdict = current.verify(frames)
            if verdict == "ok":
                self._previous = None  # the gateway has switched to the new session
        elif previous is not None and session_id == previous.session_id:
            verdict = previous.verify(frames)
        else:
            verdict = "missing_signature" if session_id is None else "unknown_session"
        if verdict != "ok":
            self.failed(verdict)
        return verdict == "ok"

    def failed(self, reason: str) -> None:
        suppressed = self._throttle.admit((reason, ""), time.monotonic())
        if suppressed is not None:
            log_event(log, "link_auth_failed", level=logging.WARNING, provider=self.name, reason=reason,
                      peer="gateway", suppressed=suppressed or None)


def make_curve_client(sock: zmq.Socket[Any], keys: CurveClientKeys) -> None:
    """Make ``sock`` (before connect) a CURVE client that talks only to the gateway's key."""
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public

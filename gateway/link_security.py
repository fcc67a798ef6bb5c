"""The gateway's half of the authenticated worker link: handshakes, sessions, connection routes.

The ROUTER names each connection with an id libzmq picks; this module decides which
provider, if any, a connection speaks for. A connection earns a name only by completing
the handshake in ``shared.protocol`` (HELLO, CHALLENGE, READY); after that the name
belongs to a *session*, and every message must carry a valid signature under it. The
gateway sends to a provider on the connection that last proved it holds the session.
Routing by connection rather than by a name the peer chooses means an impostor claiming
``openai`` gets its own connection id and never receives openai's requests (D11).

Nothing here touches sockets: the broker hands in what arrived and sends what comes out.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.link_auth import NONCE_BYTES, NonceCache, check, new_nonce, prove
from shared.link_keys import LinkSetupError
from shared.link_session import LinkSession, from_hex, session_id_of
from shared.logs import log_event
from shared.protocol import Command, encode, logical

__all__ = ["GatewayLink", "LinkRejected", "Peer", "prepare_ipc_endpoint"]

log = logging.getLogger("gateway.link")

_PROOF_BYTES = 32


class LinkRejected(Exception):
    """A message refused for a security reason; the broker drops it and reports ``link_auth_failed``."""

    def __init__(self, reason: str, claimed: str | None, authenticated: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claimed = claimed
        # The CURVE key's provider (ZAP User-Id) when it differs from the claim.
        self.authenticated = authenticated


@dataclass(slots=True)
class _Pending:
    name: str
    worker_nonce: bytes
    gateway_nonce: bytes
    expires: float


@dataclass(slots=True)
class Peer:
    session: LinkSession
    route: bytes


class GatewayLink:
    def __init__(
        self, link_key: bytes, known: Collection[str], *, curve: bool,
        handshake_timeout_s: float = 5.0, max_pending: int = 64,
    ) -> None:
        self._key = link_key
        self._known = frozenset(known)
        self.curve = curve
        self.handshake_timeout_s = handshake_timeout_s
        self.max_pending = max_pending
        self._pending: dict[bytes, _Pending] = {}  # by connection
        self._peers: dict[str, Peer] = {}  # by provider: its current session
        self._by_session: dict[bytes, Peer] = {}
        # Nonces live far longer than a handshake may take, so a replay is always caught.
        self._worker_nonces = NonceCache(ttl_s=600.0)
        self._spent = NonceCache(ttl_s=600.0)

    # ----------------------------------------------------------------- handshake

    def on_hello(self, route: bytes, payload: Any, user_id: str | None, now: float) -> list[bytes]:
        """Check a HELLO and return the CHALLENGE frames to send back to its connection."""
        name = payload.get("provider") if isinstance(payload, dict) else None
        nonce = from_hex(payload.get("nonce"), NONCE_BYTES) if isinstance(payload, dict) else None
        if not isinstance(name, str) or nonce is None:
            raise LinkRejected("malformed_hello", None)
        if name not in self._known:
            raise LinkRejected("unknown_identity", name[:40])
        self._check_user(name, user_id)
        if not self._worker_nonces.accept(nonce, now):
            raise LinkRejected("replayed_nonce", name)
        gateway_nonce = new_nonce()
        self._remember(route, _Pending(name, nonce, gateway_nonce, now + self.handshake_timeout_s), now)
        proof = prove(self._key, nonce, name, "gateway")
        return encode(Command.CHALLENGE, "", {"nonce": gateway_nonce.hex(), "for": nonce.hex(), "proof": proof.hex()})

    def on_ready(self, route: bytes, payload: Any, frames: Sequence[bytes], user_id: str | None,
                 now: float) -> LinkSession:
        """Check a READY against the challenge this connection was given; on success it owns the name."""
        fields = payload if isinstance(payload, dict) else {}
        pending = self._pending.pop(route, None)  # one attempt per challenge, pass or fail
        challenge = from_hex(fields.get("challenge"), NONCE_BYTES)
        if pending is None or challenge != pending.gateway_nonce:
            replayed = challenge is not None and not self._spent.accept(challenge, now)
            claimed = pending.name if pending else _text(fields.get("provider"))
            raise LinkRejected("replayed_nonce" if replayed else "unexpected_ready", claimed)
        self._spent.accept(pending.gateway_nonce, now)
        name = pending.name
        if now > pending.expires:
            raise LinkRejected("handshake_expired", name)
        self._check_user(name, user_id)
        proof = from_hex(fields.get("proof"), _PROOF_BYTES)
        if proof is None or not check(self._key, pending.gateway_nonce, name, "worker", proof):
            raise LinkRejected("bad_proof", name)
        if fields.get("provider") != name:
            raise LinkRejected("identity_mismatch", _text(fields.get("provider")), name)
        session = LinkSession(self._key, name, pending.worker_nonce, pending.gateway_nonce, "gateway")
        verdict = session.verify(frames)
        if verdict != "ok":
            raise LinkRejected(verdict, name)
        self._install(Peer(session, route))
        return session

    def _remember(self, route: bytes, pending: _Pending, now: float) -> None:
        for stale in [r for r, p in self._pending.items() if p.expires < now]:
            del self._pending[stale]
        self._pending.pop(route, None)  # a newer HELLO on a connection replaces its older one
        while len(self._pending) >= self.max_pending:
            del self._pending[next(iter(self._pending))]  # the oldest: a flood cannot grow this
        self._pending[route] = pending

    def _install(self, peer: Peer) -> None:
        old = self._peers.get(peer.session.name)
        if old is not None:
            self._by_session.pop(old.session.session_id, None)
        self._peers[peer.session.name] = peer
        self._by_session[peer.session.session_id] = peer

    # ----------------------------------------------------------------- sessions

    def admit(self, route: bytes, frames: Sequence[bytes], user_id: str | None) -> Peer | None:
        """The peer a signed message comes from, once checked; None for a session we do not know.

        An unknown session is normal right after a gateway restart: the caller asks that
        connection to handshake again. A valid message from a new connection moves the
        peer's route there (the worker's DEALER reconnected): only the session holder
        can produce one.
        """
        session_id = session_id_of(logical(frames)[4])
        if session_id is None:
            raise LinkRejected("missing_signature", None)
        peer = self._by_session.get(session_id)
        if peer is None:
            return None
        name = peer.session.name
        self._check_user(name, user_id)
        verdict = peer.session.verify(frames)
        if verdict != "ok":
            raise LinkRejected(verdict, name)
        if peer.route != route:
            peer.route = route
            log_event(log, "worker_link_moved", worker=name)
        return peer

    def frames_to(self, name: str, command: Command, request_id: str = "", payload: Any = None) -> list[bytes] | None:
        """A signed message for ``name``'s connection, with its route in front; None without a session."""
        peer = self._peers.get(name)
        if peer is None:
            return None
        return [peer.route, *encode(command, request_id, payload, peer.session.sign)]

    def forget(self, name: str) -> None:
        """End ``name``'s session: nothing more is signed for it until it handshakes again."""
        peer = self._peers.pop(name, None)
        if peer is not None:
            self._by_session.pop(peer.session.session_id, None)

    def _check_user(self, name: str, user_id: str | None) -> None:
        # Over CURVE every connection has a User-Id: the provider its key belongs to.
        if self.curve and user_id != name:
            raise LinkRejected("identity_mismatch", name, user_id)


def _text(value: object) -> str | None:
    return value[:40] if isinstance(value, str) else None


def prepare_ipc_endpoint(endpoint: str) -> None:
    """Refuse an ipc socket in a folder others may enter (0700 only); remove a stale socket file.

    On ipc the folder's permissions are the first gate: only this user can connect at all.
    """
    path = Path(endpoint.removeprefix("ipc://"))
    if str(path).startswith("@"):
        raise LinkSetupError(f"abstract ipc socket {endpoint} has no folder to protect; fix: use a path")
    try:
        info = path.parent.stat()
    except OSError as exc:
        raise LinkSetupError(f"cannot use the worker socket folder {path.parent} ({exc.strerror}); "
                             "fix: create it with mode 0700") from None
    if info.st_mode & 0o077:
        raise LinkSetupError(f"the worker socket folder {path.parent} is open to group or others (mode "
                             f"{stat.S_IMODE(info.st_mode):04o}); fix: chmod 700 {path.parent}")
    if path.exists() or path.is_symlink():
        path.unlink()  # a stale socket from a previous run

"""Session attestation tokens: short-lived, signed proof that a registered client may open a session.

A client token (``shared.tokens``) is long-lived and stored only as a hash. A session
token is derived from it by the operator (``llm-caller token issue``) for one client,
one transport and a short lifetime, so a token leaked from a log or a process list is
useless soon after and cannot be carried from stdio to HTTP. Format::

    llmcs_<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, domain | "llmcs_<claims>"))>

Claims (compact JSON, sorted keys): ``v`` format version, ``sub`` client name, ``trn``
transport (``http``/``stdio``), ``iat``/``exp`` Unix seconds, ``jti`` a random id that a
future deny-list can name, ``bnd`` the client's *binding* when the token was issued. A
token is about 220 characters, short enough for a header.

The binding (``session_binding``) is a digest of the client's current token hash and its
``session_generation`` in client-registry.json. Rotating the client token, removing the
client and adding it again (a new token), or disabling it (which raises the generation)
each change the binding, and so end every session token issued before, for good:
re-enabling a client does not bring its old session tokens back.

What verification does *not* decide: whether the client still exists, is enabled and
has the same binding. The caller must look ``claims.client_id`` up in
client-registry.json on every use and compare ``claims.binding`` with
``session_binding(entry)`` (``gateway.auth`` does).

The HMAC covers the exact characters sent, prefix included, and is checked (in constant
time) before the claims are even parsed; only then are the times and binding checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from shared.link_auth import decode_hex_key, read_private_file
from shared.names import NAME_PATTERN as CLIENT_NAME_PATTERN  # the one definition of a client name

__all__ = [
    "MAX_TTL_S",
    "SESSION_KEY_BYTES",
    "TOKEN_PREFIX",
    "SessionClaims",
    "SessionTokenError",
    "Transport",
    "issue_session_token",
    "load_session_key",
    "session_binding",
    "verify_session_token",
]

Transport = Literal["http", "stdio"]
TOKEN_PREFIX = "llmcs_"  # noqa: S105 (a marker, not a secret)
MAX_TTL_S = 86_400  # a day: long-lived access is what client tokens are for
SESSION_KEY_BYTES = 32
_TRANSPORTS: frozenset[str] = frozenset({"http", "stdio"})
_DOMAIN = b"llm-caller session token v1\x00"
_VERSION = 2  # 2 added "bnd"; version-1 tokens are refused as malformed
_CLAIM_KEYS = frozenset({"v", "sub", "trn", "iat", "exp", "jti", "bnd"})
_BINDING_DOMAIN = b"llmc-session-bnd"  # BLAKE2b personalisation: this digest means nothing elsewhere
# Real tokens are ~200 characters; the cap keeps a hostile header from costing work.
_MAX_TOKEN_CHARS = 1024
# Issuer and verifier share one host clock; this only absorbs int() rounding and tiny drift.
_CLOCK_SKEW_S = 5
_B64URL = re.compile(r"[A-Za-z0-9_-]+")

Reason = Literal["format", "signature", "expired", "not_yet_valid", "transport"]


class SessionTokenError(Exception):
    """The token was refused. ``reason`` is a stable code for audit logs; ``str()`` is for people.

    Messages never quote the token or any part of it. ``client_id`` is set when the
    signature was genuine (the token is ours, just expired or for the other transport).
    """

    def __init__(self, reason: Reason, message: str, client_id: str | None = None) -> None:
        self.reason = reason
        self.client_id = client_id
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    client_id: str
    transport: Transport
    issued_at: int
    expires_at: int
    token_id: str
    binding: str


def session_binding(token_sha256: str, generation: int) -> str:
    """What ties a session token to one state of its client: token hash and session generation.

    Not secret (it is derived from a hash of a 256-bit token, and readable in the token's
    claims), just different after every rotate, re-add or disable.
    """
    text = f"{token_sha256}:{generation}".encode("ascii")
    return _b64encode(hashlib.blake2b(text, digest_size=12, person=_BINDING_DOMAIN).digest())


def load_session_key(path: Path) -> bytes:
    """The signing key from a hex file written by ``keys generate --kind session`` (0600 or refused)."""
    what = "session key file"
    return decode_hex_key(read_private_file(Path(path), what), Path(path), what, min_bytes=SESSION_KEY_BYTES)


def issue_session_token(key: bytes, client_id: str, transport: Transport, ttl_s: float,
                        now: float | None = None, *, binding: str) -> str:
    """A token for ``client_id`` over ``transport``, valid from ``now`` for ``ttl_s`` seconds (1 s to a day),
    for as long as the client's ``binding`` (``session_binding``) stays what it is now.

    Raises ``ValueError`` for a short key, an invalid client name, an unknown transport or
    a lifetime out of range: the issuer's mistakes, reported before anything is signed.
    """
    _check_key(key)
    if not re.fullmatch(CLIENT_NAME_PATTERN, client_id):
        raise ValueError(f"invalid client name {client_id!r}")
    if transport not in _TRANSPORTS:
        raise ValueError(f"transport must be 'http' or 'stdio', not {transport!r}")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 1 second and {MAX_TTL_S // 3600} hours")
    if not _B64URL.fullmatch(binding):
        raise ValueError("binding must come from session_binding()")
    moment = time.time() if now is None else now
    claims = {"v": _VERSION, "sub": client_id, "trn": transport, "iat": int(moment),
              "exp": int(moment + ttl_s), "jti": secrets.token_urlsafe(12), "bnd": binding}
    signed = TOKEN_PREFIX + _b64encode(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    return f"{signed}.{_b64encode(_mac(key, signed))}"


def verify_session_token(key: bytes, token: str, *, transport: str, now: float | None = None) -> SessionClaims:
    """The token's claims if it is genuine, current and bound to ``transport``; else ``SessionTokenError``.

    Any string may be passed: malformed input is a ``SessionTokenError`` (reason
    ``format``), never another exception.
    """
    _check_key(key)
    signed, signature = _split(token)
    if not hmac.compare_digest(_mac(key, signed), signature):
        raise SessionTokenError("signature", "session token signature is invalid (altered, or signed with "
                                "another key)")
    claims = _parse_claims(signed.removeprefix(TOKEN_PREFIX))
    moment = time.time() if now is None else now
    who = claims.client_id
    if claims.issued_at > moment + _CLOCK_SKEW_S:
        raise SessionTokenError("not_yet_valid", "session token is not valid yet (issued in the future)", who)
    if moment >= claims.expires_at:
        raise SessionTokenError("expired", "session token has expired; issue a new one with "
                                "`llm-caller token issue`", who)
    if claims.transport != transport:
        raise SessionTokenError("transport", f"session token is bound to {claims.transport}, "
                                f"not {transport}", who)
    return claims


# ---- helpers --------------------------------------------------------------------------


def _check_key(key: bytes) -> None:
    if len(key) < SESSION_KEY_BYTES:
        raise ValueError(f"session key must be at least {SESSION_KEY_BYTES} bytes")


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, _DOMAIN + signed.encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url: one encoding per value, so a token has exactly one spelling."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _bad_format(what: str) -> SessionTokenError:
    return SessionTokenError("format", f"not a session token ({what})")


def _split(token: object) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise _bad_format("not text")
    if len(token) > _MAX_TOKEN_CHARS:
        raise _bad_format("too long")
    if not token.startswith(TOKEN_PREFIX):
        raise _bad_format(f"missing the {TOKEN_PREFIX} prefix")
    signed, dot, signature = token.rpartition(".")
    if not dot or "." in signed or not _B64URL.fullmatch(signed.removeprefix(TOKEN_PREFIX)):
        raise _bad_format("expected prefix, claims, '.', signature")
    try:
        raw_signature = _b64decode(signature)
    except (ValueError, binascii.Error):
        raise _bad_format("signature is not base64url") from None
    if len(raw_signature) != hashlib.sha256().digest_size:
        raise _bad_format("signature has the wrong length")
    return signed, raw_signature


def _parse_claims(body: str) -> SessionClaims:
    # Reached only for text signed with our key, so a failure here means an issuer bug or a
    # format version this code does not know, not an attacker.
    try:
        data: Any = orjson.loads(_b64decode(body))
    except (ValueError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        raise _bad_format("claims are not base64url JSON") from None
    if not isinstance(data, dict) or set(data) != _CLAIM_KEYS or data["v"] != _VERSION:
        raise _bad_format("unknown claims layout")
    sub, trn, iat, exp, jti, bnd = (data[k] for k in ("sub", "trn", "iat", "exp", "jti", "bnd"))
    times_ok = all(isinstance(t, int) and not isinstance(t, bool) for t in (iat, exp))
    if not (times_ok and isinstance(sub, str) and isinstance(jti, str) and isinstance(bnd, str)
            and isinstance(trn, str) and trn in _TRANSPORTS):
        raise _bad_format("claims have wrong types")
    if not iat < exp <= iat + MAX_TTL_S:
        raise _bad_format("lifetime out of range")
    return SessionClaims(client_id=sub, transport=cast(Transport, trn), issued_at=iat, expires_at=exp, token_id=jti,
                         binding=bnd)

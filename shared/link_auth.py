"""Proof that both ends of the gateway↔worker link hold the same secret: pure functions, no sockets.

The link key is 32 random bytes that the gateway and a worker both read from a 0600 file
(``llm-caller keys generate --kind link``). A handshake built from these primitives::

    gateway → worker   CHALLENGE  n_g = new_nonce()
    worker  → gateway  HELLO      prove(key, n_g, identity, "worker"), n_w = new_nonce()
    gateway → worker   WELCOME    prove(key, n_w, identity, "gateway")

Each side checks the proof over the nonce *it* chose, so a recorded proof is worthless
later. ``identity`` is the worker's routing identity (its provider name) in both
directions, and ``role`` is the prover's role, so a proof made by the worker cannot be
reflected back as the gateway's, and a proof for ``openai`` says nothing about
``anthropic``. The message is length-prefixed and domain-separated, so no two distinct
(role, identity, nonce) triples can produce the same HMAC input.

``NonceCache`` is for the side that *answers* challenges: a peer re-sending a nonce it
already sent is either broken or replaying a captured exchange, and is refused.

The key never leaves the two processes; nothing here logs it, and errors never quote it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from collections import OrderedDict
from pathlib import Path
from typing import Literal

__all__ = [
    "LINK_KEY_BYTES",
    "NONCE_BYTES",
    "KeyFileError",
    "NonceCache",
    "Role",
    "check",
    "decode_hex_key",
    "load_link_key",
    "new_nonce",
    "prove",
    "read_private_file",
]

Role = Literal["gateway", "worker"]
LINK_KEY_BYTES = 32
NONCE_BYTES = 32
_ROLES: frozenset[str] = frozenset({"gateway", "worker"})
_DOMAIN = b"llm-caller link proof v1"
# A key file holds 64 hex characters and a newline; anything much larger is not a key file.
_MAX_KEY_FILE_BYTES = 4096


class KeyFileError(Exception):
    """A key file is missing, unreadable, too open or malformed. ``str()`` is the operator message."""


# ---- key files ------------------------------------------------------------------------


def read_private_file(path: Path, what: str) -> bytes:
    """Read a secret file that only its owner may read; refuse it otherwise.

    Permissions are checked on the *open* descriptor (fstat), so the file cannot be
    swapped between the check and the read. Refusing (rather than warning) matches the
    provider-key rule in D4: a secret others can read is already a leak.
    """
    try:
        # O_NONBLOCK: a FIFO planted at this name must not hang the process on open.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} not found; fix: create it with `llm-caller keys generate`") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open {what} {path} ({exc.strerror}); fix: check the path and its "
                           "permissions (symlinks are refused)") from None
    try:
        _check_private(os.fstat(fd), path, what)
        data = _read_up_to(fd, _MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path} ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{what} {path} is too large to be a key file")
    return data


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := os.read(fd, limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _check_private(info: os.stat_result, path: Path, what: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{what} {path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyFileError(f"{what} {path} is open to group or others (mode "
                           f"{stat.S_IMODE(info.st_mode):04o}); fix: chmod 600 {path}, and rotate the "
                           "key if anyone else may have read it")


def decode_hex_key(data: bytes, path: Path, what: str, *, min_bytes: int = LINK_KEY_BYTES) -> bytes:
    """Parse a hex key file's contents (surrounding whitespace allowed) of at least ``min_bytes`` bytes."""
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{what} {path} is not hex text; fix: regenerate it with "
                           "`llm-caller keys generate`") from None
    if len(key) < min_bytes:
        raise KeyFileError(f"{what} {path} holds {len(key)} bytes, fewer than the {min_bytes} required; "
                           "fix: regenerate it with `llm-caller keys generate`")
    return key


def load_link_key(path: Path) -> bytes:
    """The link key from a hex file written by ``keys generate --kind link``; ``KeyFileError`` if unsafe."""
    return decode_hex_key(read_private_file(Path(path), "link key file"), Path(path), "link key file")


# ---- proofs ---------------------------------------------------------------------------


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def _message(nonce: bytes, identity: str, role: str) -> bytes:
    parts = (_DOMAIN, role.encode("ascii"), identity.encode("utf-8"), nonce)
    # Length prefixes: with plain separators, an identity containing the separator could
    # make two different triples serialise to the same bytes.
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def prove(key: bytes, nonce: bytes, identity: str, role: Role) -> bytes:
    """HMAC-SHA256 proof that the ``role`` side of link ``identity`` holds ``key``, over ``nonce``.

    Raises ``ValueError`` for arguments no honest caller passes (short key, wrong nonce
    size, unknown role, empty identity): those are bugs, not attacks.
    """
    if len(key) < LINK_KEY_BYTES:
        raise ValueError(f"link key must be at least {LINK_KEY_BYTES} bytes")
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    if role not in _ROLES:
        raise ValueError(f"role must be 'gateway' or 'worker', not {role!r}")
    if not identity:
        raise ValueError("identity must not be empty")
    return hmac.new(key, _message(nonce, identity, role), hashlib.sha256).digest()


def check(key: bytes, nonce: bytes, identity: str, role: Role, proof: bytes) -> bool:
    """Whether ``proof`` is ``prove(key, nonce, identity, role)``, compared in constant time.

    Never raises on peer-supplied values: a malformed nonce or proof is simply False.
    """
    if len(nonce) != NONCE_BYTES or role not in _ROLES or not identity:
        return False
    return hmac.compare_digest(prove(key, nonce, identity, role), proof)


# ---- replay protection ----------------------------------------------------------------


class NonceCache:
    """Remembers nonces for ``ttl_s`` seconds, at most ``max_entries`` of them.

    ``accept(nonce)`` is True the first time and False for a repeat. When full, the oldest
    entry is dropped to make room: memory stays bounded even under a flood, at the cost
    that a nonce older than the flood could be accepted again. Size it well above the
    handshakes expected per ``ttl_s`` (a few per worker restart) and pair it with a
    handshake timeout shorter than ``ttl_s``.
    """

    def __init__(self, max_entries: int = 4096, ttl_s: float = 300.0) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries must be >= 1 and ttl_s > 0")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        # Insertion order is expiry order (one TTL for all), so expired entries are at the front.
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def accept(self, nonce: bytes, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if nonce in self._seen:
            return False
        while len(self._seen) >= self.max_entries:
            self._seen.popitem(last=False)
        self._seen[bytes(nonce)] = now + self.ttl_s
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now:
                return
            del self._seen[oldest]

"""Client tokens: generated once, shown once, stored only as a SHA-256 hash.

A token is 32 random bytes (256 bits) in URL-safe base64 behind an ``llmc_`` prefix;
the prefix lets secret scanners and our own redaction recognise a leaked token. With
that much entropy a plain SHA-256 is the right hash: a slow password hash protects
guessable secrets, and these are not guessable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_PREFIX", "hash_token", "new_token", "token_matches"]

TOKEN_PREFIX = "llmc_"  # noqa: S105 (a marker, not a secret)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented token against a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_sha256)

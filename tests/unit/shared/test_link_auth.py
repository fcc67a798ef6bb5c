"""shared.link_auth: proofs bind key, nonce, identity and direction; replays and open key files are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.link_auth import NONCE_BYTES, KeyFileError, NonceCache, check, load_link_key, new_nonce, prove

KEY = bytes(range(32))


def test_nonces_are_32_fresh_bytes() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100 and all(len(n) == NONCE_BYTES for n in nonces)


def test_a_proof_checks() -> None:
    nonce = new_nonce()
    proof = prove(KEY, nonce, "openai", "worker")
    assert len(proof) == 32
    assert check(KEY, nonce, "openai", "worker", proof)


def test_a_full_handshake() -> None:
    # gateway challenges the worker, the worker answers and challenges back
    gateway_nonce = new_nonce()
    worker_proof = prove(KEY, gateway_nonce, "openai", "worker")
    worker_nonce = new_nonce()
    assert check(KEY, gateway_nonce, "openai", "worker", worker_proof)
    gateway_proof = prove(KEY, worker_nonce, "openai", "gateway")
    assert check(KEY, worker_nonce, "openai", "gateway", gateway_proof)


@pytest.mark.parametrize(("key", "nonce_changed", "identity", "role"), [
    (bytes(32), False, "openai", "worker"),     # wrong key
    (KEY, True, "openai", "worker"),            # replayed proof against a fresh nonce
    (KEY, False, "anthropic", "worker"),        # wrong identity
    (KEY, False, "openai", "gateway"),          # reflected in the other direction
])
def test_a_proof_is_bound_to_everything(key: bytes, nonce_changed: bool, identity: str, role: str) -> None:
    nonce = new_nonce()
    proof = prove(KEY, nonce, "openai", "worker")
    assert not check(key, new_nonce() if nonce_changed else nonce, identity, role, proof)  # type: ignore[arg-type]


def test_identities_cannot_be_shifted_across_fields() -> None:
    nonce = new_nonce()
    assert prove(KEY, nonce, "openai", "worker") != prove(KEY, nonce, "openai\x00", "worker")


@pytest.mark.parametrize(("nonce", "identity", "role", "proof"), [
    (b"short", "openai", "worker", b"x" * 32),
    (bytes(32), "", "worker", b"x" * 32),
    (bytes(32), "openai", "admin", b"x" * 32),
    (bytes(32), "openai", "worker", b""),
    (bytes(32), "openai", "worker", b"x" * 1000),
])
def test_check_never_raises_on_peer_input(nonce: bytes, identity: str, role: str, proof: bytes) -> None:
    assert check(KEY, nonce, identity, role, proof) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "nonce", "identity", "role"), [
    (b"short", bytes(32), "openai", "worker"),
    (KEY, b"short", "openai", "worker"),
    (KEY, bytes(32), "", "worker"),
    (KEY, bytes(32), "openai", "admin"),
])
def test_prove_refuses_bad_arguments(key: bytes, nonce: bytes, identity: str, role: str) -> None:
    with pytest.raises(ValueError):
        prove(key, nonce, identity, role)  # type: ignore[arg-type]


# ---- NonceCache -----------------------------------------------------------------------


def test_replayed_nonce_is_rejected() -> None:
    cache = NonceCache()
    nonce = new_nonce()
    assert cache.accept(nonce, now=0)
    assert not cache.accept(nonce, now=1)
    assert cache.accept(new_nonce(), now=1)


def test_nonce_is_forgotten_after_its_ttl() -> None:
    cache = NonceCache(ttl_s=10)
    nonce = new_nonce()
    assert cache.accept(nonce, now=0)
    assert not cache.accept(nonce, now=9.9)
    assert cache.accept(nonce, now=10)


def test_cache_is_bounded_and_drops_the_oldest() -> None:
    cache = NonceCache(max_entries=3, ttl_s=1000)
    nonces = [new_nonce() for _ in range(10)]
    for i, nonce in enumerate(nonces):
        assert cache.accept(nonce, now=i)
        assert len(cache) <= 3
    assert not cache.accept(nonces[-1], now=11)  # still remembered
    assert cache.accept(nonces[0], now=11)       # evicted long ago


def test_expired_entries_free_their_room() -> None:
    cache = NonceCache(max_entries=100, ttl_s=1)
    for i in range(50):
        cache.accept(new_nonce(), now=i)
    assert len(cache) == 1


def test_cache_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        NonceCache(max_entries=0)
    with pytest.raises(ValueError):
        NonceCache(ttl_s=0)


# ---- key files ------------------------------------------------------------------------


def _key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "workers.link.secret"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_load_link_key(tmp_path: Path) -> None:
    assert load_link_key(_key_file(tmp_path, KEY.hex() + "\n")) == KEY


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_load_link_key_refuses_a_file_others_can_read(tmp_path: Path, mode: int) -> None:
    with pytest.raises(KeyFileError, match=r"open to group or others.*chmod 600"):
        load_link_key(_key_file(tmp_path, KEY.hex(), mode))


@pytest.mark.parametrize(("text", "message"), [("zz" * 32, "not hex"), ("ab" * 16, "fewer than the 32")])
def test_load_link_key_refuses_bad_content(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        load_link_key(_key_file(tmp_path, text))


def test_load_link_key_refuses_missing_files_folders_and_symlinks(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_link_key(tmp_path / "absent")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_link_key(tmp_path)
    target = _key_file(tmp_path, KEY.hex())
    link = tmp_path / "link"
    os.symlink(target, link)
    with pytest.raises(KeyFileError, match="symlinks are refused"):
        load_link_key(link)


def test_key_error_never_shows_the_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as caught:
        load_link_key(_key_file(tmp_path, KEY.hex(), 0o644))
    assert KEY.hex() not in str(caught.value)

"""gateway.lockout and gateway.access: failures counted per key, growing blocks, audited block/unblock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.access import AccessControl
from gateway.auth import RegistryTokenVerifier
from gateway.lockout import Lockout, LockoutPolicy
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token

POLICY = LockoutPolicy(threshold=3, window_s=10.0, base_s=30.0, max_s=120.0)


def _fail(lockout: Lockout, key: str, times: int, now: float, scale: int = 1) -> list[Any]:
    changes: list[Any] = []
    for _ in range(times):
        changes += lockout.record_failure(key, now, scale)
    return changes


def test_below_the_threshold_nothing_is_blocked() -> None:
    lockout = Lockout(POLICY)
    assert _fail(lockout, "k", 2, now=0.0) == []
    assert lockout.retry_after("k", 0.0) is None


def test_the_threshold_blocks_for_the_base_period() -> None:
    lockout = Lockout(POLICY)
    [change] = _fail(lockout, "k", 3, now=100.0)
    assert change.blocked and change.duration_s == 30.0 and change.strikes == 1
    assert lockout.retry_after("k", 110.0) == pytest.approx(20.0)
    assert lockout.retry_after("other", 110.0) is None
    assert lockout.next_expiry() == 130.0


def test_failures_older_than_the_window_do_not_count() -> None:
    lockout = Lockout(POLICY)
    _fail(lockout, "k", 2, now=0.0)
    assert _fail(lockout, "k", 1, now=10.5) == []  # the first two slid out of the 10 s window
    assert _fail(lockout, "k", 1, now=11.0) == []
    assert _fail(lockout, "k", 1, now=12.0)[0].blocked


def test_a_block_ends_on_time_and_reports_the_refused_requests() -> None:
    lockout = Lockout(POLICY)
    _fail(lockout, "k", 3, now=0.0)
    for moment in (1.0, 2.0, 3.0):
        assert lockout.retry_after("k", moment) is not None
    assert lockout.expire(29.0) == []
    [ended] = lockout.expire(30.0)
    assert not ended.blocked and ended.rejected == 3 and ended.key == "k"
    assert lockout.retry_after("k", 30.0) is None and lockout.next_expiry() is None


def test_failures_while_blocked_do_not_extend_the_block() -> None:
    lockout = Lockout(POLICY)
    _fail(lockout, "k", 3, now=0.0)
    assert _fail(lockout, "k", 10, now=5.0) == []
    assert lockout.retry_after("k", 29.9) == pytest.approx(0.1)


def test_repeat_blocks_double_up_to_the_maximum() -> None:
    lockout = Lockout(POLICY)
    durations = []
    now = 0.0
    for _ in range(5):
        block = next(c for c in _fail(lockout, "k", 3, now) if c.blocked)
        durations.append(block.duration_s)
        now += block.duration_s
        lockout.expire(now)
    assert durations == [30.0, 60.0, 120.0, 120.0, 120.0]


def test_a_long_clean_spell_starts_the_doubling_over() -> None:
    lockout = Lockout(POLICY)
    _fail(lockout, "k", 3, now=0.0)
    lockout.expire(30.0)
    [again] = [c for c in _fail(lockout, "k", 3, now=30.0 + POLICY.max_s + 1) if c.blocked]
    assert again.strikes == 1 and again.duration_s == 30.0


def test_a_block_that_ran_out_unnoticed_is_reported_before_the_next_one() -> None:
    lockout = Lockout(POLICY)
    _fail(lockout, "k", 3, now=0.0)
    changes = _fail(lockout, "k", 3, now=40.0)  # nobody called expire() in between
    assert [c.blocked for c in changes] == [False, True]
    assert changes[1].duration_s == 60.0


def test_a_scaled_key_tolerates_more() -> None:
    lockout = Lockout(POLICY)
    assert _fail(lockout, "addr", 3 * 4 - 1, now=0.0, scale=4) == []
    assert _fail(lockout, "addr", 1, now=0.0, scale=4)[0].blocked


def test_the_table_stays_bounded_and_keeps_blocked_keys() -> None:
    lockout = Lockout(LockoutPolicy(threshold=3, window_s=10.0, max_keys=100))
    _fail(lockout, "blocked", 3, now=0.0)
    for index in range(500):
        lockout.record_failure(f"k{index}", 1.0)
    assert len(lockout) <= 101
    assert lockout.retry_after("blocked", 2.0) is not None


def test_stale_keys_are_swept() -> None:
    lockout = Lockout(POLICY)
    for index in range(50):
        lockout.record_failure(f"k{index}", 0.0)
    lockout.record_failure("late", 100.0)
    assert len(lockout) == 1


def test_block_length_is_finite_for_a_key_blocked_very_often() -> None:
    assert POLICY.block_for(5000) == POLICY.max_s


# ---- AccessControl: keys, audit, bypass ------------------------------------------------


@pytest.fixture
def control(tmp_path: Path) -> tuple[AccessControl, str, Path]:
    token = new_token()
    registry = tmp_path / "client-registry.json"
    write_json_atomic(registry, {"clients": {"editor": {"token_sha256": hash_token(token)}}}, mode=0o600)
    audit = tmp_path / "audit.jsonl"
    clock = [1000.0]
    access = AccessControl(RegistryTokenVerifier(registry), POLICY, audit, clock=lambda: clock[0])
    return access, token, audit


def _events(audit: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in audit.read_bytes().splitlines()] if audit.exists() else []


def _check(access: AccessControl, credential: str, address: str) -> tuple[bool, float | None]:
    result, wait = access.check(credential, "http", access.source((address, 5000)))
    return result.ok, wait


def test_a_valid_token_is_admitted_whatever_others_did(control: tuple[AccessControl, str, Path]) -> None:
    access, token, audit = control
    for index in range(POLICY.threshold * 20):
        _check(access, f"llmc_guess{index}", "127.0.0.1")
    assert _check(access, "llmc_another-guess", "127.0.0.1") == (False, pytest.approx(30.0))
    assert _check(access, token, "127.0.0.1") == (True, None)  # same address, blocked source
    assert _check(access, token, "127.0.0.9") == (True, None)
    events = [e["event"] for e in _events(audit)]
    assert "auth_source_blocked" in events and "client_connected" in events


@pytest.mark.parametrize("address", ["127.0.0.2", "127.1.2.3", "127.255.255.254", "::1", "::ffff:127.0.0.5"])
def test_every_loopback_address_is_one_source(control: tuple[AccessControl, str, Path], address: str) -> None:
    access, _, _ = control
    assert access.source((address, 1)).key == "loopback"
    for index in range(POLICY.threshold):  # rotating through 127/8 while guessing
        assert _check(access, f"llmc_guess{index}", f"127.0.{index}.1") == (False, None)
    ok, wait = _check(access, "llmc_next-guess", address)
    assert not ok and wait is not None


def test_a_remote_source_is_counted_by_address_or_ipv6_prefix(control: tuple[AccessControl, str, Path]) -> None:
    access, token, _ = control
    for index in range(POLICY.threshold):
        _check(access, f"llmc_guess{index}", "192.0.2.7")
    assert _check(access, "llmc_x", "192.0.2.7")[1] is not None
    assert _check(access, "llmc_x", "192.0.2.8")[1] is None
    assert _check(access, token, "192.0.2.7") == (True, None)
    assert access.source(("2001:db8::1", 1)).key == access.source(("2001:db8::ffff:2", 1)).key == "2001:db8::/64"


def test_a_failure_that_names_its_client_is_401_even_when_blocked(tmp_path: Path,
                                                                  control: tuple[AccessControl, str, Path]) -> None:
    access, _, _ = control
    off = new_token()
    registry = tmp_path / "client-registry.json"
    write_json_atomic(registry, {"clients": {"off": {"token_sha256": hash_token(off), "disabled": True}}}, mode=0o600)
    access.verifier = RegistryTokenVerifier(registry)
    for _ in range(POLICY.threshold * 3):
        ok, wait = _check(access, off, "127.0.0.1")
        assert not ok and wait is None  # not a guess: never counted toward a block
    assert _check(access, "llmc_guess", "127.0.0.1") == (False, None)
    for index in range(POLICY.threshold):
        _check(access, f"llmc_guess{index}", "127.0.0.1")
    assert _check(access, "llmc_guess", "127.0.0.1")[1] is not None
    assert _check(access, off, "127.0.0.1") == (False, None)  # the owner hears "disabled", not "slow down"


def test_failures_are_audited_in_aggregate(control: tuple[AccessControl, str, Path]) -> None:
    access, _, audit = control
    clock = [1000.0]
    access.failures._clock = lambda: clock[0]
    for index in range(500):
        _check(access, f"llmc_guess{index}", f"127.0.{index % 7}.1")
    failed = [e for e in _events(audit) if e["event"] == "auth_failed"]
    assert len(failed) == 1 and failed[0]["source"] == "loopback" and failed[0]["reason"] == "unknown_token"
    clock[0] += POLICY.window_s
    access.failures.flush()
    [summary] = [e for e in _events(audit) if e["event"] == "auth_failures"]
    assert summary["failures"] == 500 and summary["by_reason"] == {"unknown_token": 500}
    assert summary["addresses"] == 7 and summary["source"] == "loopback"
    assert len(_events(audit)) <= 4  # failed, blocked, summary (+ nothing per try)
    _check(access, "llmc_one-more", "127.0.0.1")  # a new window starts with a line of its own
    assert [e["event"] for e in _events(audit)].count("auth_failed") == 2


def test_audit_events_never_carry_the_credential(control: tuple[AccessControl, str, Path]) -> None:
    access, token, audit = control
    forged = "llmc_" + "f" * 43
    for _ in range(POLICY.threshold):
        _check(access, forged, "127.0.0.1")
    _check(access, token, "127.0.0.2")
    access.failures.flush_all()
    text = audit.read_text()
    assert forged not in text and token not in text and forged[5:20] not in text
    failed = next(e for e in _events(audit) if e["event"] == "auth_failed")
    assert failed["reason"] == "unknown_token" and failed["address"] == "127.0.0.1"
    assert oct(audit.stat().st_mode & 0o777) == "0o600"


def test_an_unwritable_audit_file_does_not_fail_the_check(tmp_path: Path,
                                                          control: tuple[AccessControl, str, Path]) -> None:
    access, token, _ = control
    access._audit_file = tmp_path / "missing-folder" / "file" / "audit.jsonl"
    (tmp_path / "missing-folder").write_text("a file where a folder should be")
    assert _check(access, token, "127.0.0.1")[0]

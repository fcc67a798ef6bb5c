"""The HTTP front end under attack and misuse: lockout, token checks, session tokens, transport hardening.

One stack with small lockout numbers (3 failures in 5 s block for 2 s, doubling to 8 s)
and a 64 KiB body limit, set the way an operator would: LLMC_* variables through the
launcher.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from shared.settings import SecuritySettings
from tests.integration.conftest import run
from tests.integration.security_helpers import (
    ERAS,
    add_clients,
    audit_events,
    base_url,
    mcp_headers,
    post,
    sandbox_with,
)

pytestmark = pytest.mark.integration

SECURITY = SecuritySettings(lockout_threshold=3, lockout_window_s=5.0, lockout_base_s=2.0, lockout_max_s=8.0,
                            max_body_bytes=64 * 1024, session_max_ttl_s=600)


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with sandbox_with(SECURITY, heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


@pytest.fixture(scope="module")
def tokens(box: Sandbox) -> dict[str, str]:
    # "paused" is used by one test only: with a threshold of 3, "off" is soon locked out.
    return add_clients(box, off={"disabled": True}, old={"expires_at": int(time.time()) - 60},
                       narrow={"tools": ["getHealth"]}, paused={"disabled": True})


def _json_rpc_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert body["jsonrpc"] == "2.0" and isinstance(body["error"]["code"], int), body
    error: dict[str, object] = body["error"]
    return error


# ---- token checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("who", "says"), [("off", "clients enable off"), ("old", "expired at")])
def test_disabled_or_expired_client_is_401_saying_why(box: Sandbox, tokens: dict[str, str], era: str, who: str,
                                                      says: str) -> None:
    response = post(box, era, tokens[who])
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"') and "resource_metadata" not in challenge
    assert says in response.json()["error_description"] and says in challenge
    assert tokens[who] not in response.text


def test_a_client_without_the_right_gets_a_permission_error(box: Sandbox, tokens: dict[str, str]) -> None:
    async def scenario() -> None:
        async with box.client(token=tokens["narrow"]) as client:
            assert not (await client.call_tool("getHealth", {})).is_error
            refused = await client.call_tool("chat", {"prompt": "x"})
        assert refused.is_error and refused.structured_content is not None
        assert refused.structured_content["error"]["type"] == "permission"

    run(scenario())


# ---- lockout -------------------------------------------------------------------------------


def _wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _wait_unblocked(box: Sandbox) -> None:
    """Until every block of this module's stack has ended (each block's unblock is audited when it ends)."""
    _wait_for(lambda: len(audit_events(box, "auth_source_unblocked")) == len(audit_events(box, "auth_source_blocked")))


def test_repeated_failures_block_then_unblock_with_growing_periods(box: Sandbox, tokens: dict[str, str]) -> None:
    _wait_unblocked(box)
    stale = "llmc_revoked-token-of-one-local-tool"
    for _ in range(3):
        assert post(box, "2026-07-28", stale).status_code == 401
    blocked = post(box, "2026-07-28", stale)
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "2"
    assert blocked.json()["error"]["data"]["reason"] == "too_many_failures"
    assert post(box, "2026-07-28", box.token).status_code == 200  # a valid token is checked first: admitted
    assert post(box, "2026-07-28", tokens["off"]).status_code == 401  # names its client: told why, not throttled
    [block] = audit_events(box, "auth_source_blocked")[-1:]
    assert block["duration_s"] == 2.0 and block["strikes"] == 1 and block["source"] == "loopback"

    # The unblock is audited when it happens, not when the next request arrives.
    _wait_for(lambda: len(audit_events(box, "auth_source_unblocked")) == len(audit_events(box, "auth_source_blocked")))
    [unblock] = audit_events(box, "auth_source_unblocked")[-1:]
    assert unblock["rejected_while_blocked"] == 1 and unblock["source"] == "loopback"
    assert post(box, "2026-07-28", stale).status_code == 401  # may try again (and fail) now

    for _ in range(2):
        post(box, "2026-07-28", stale)
    again = post(box, "2026-07-28", stale)
    assert again.status_code == 429 and again.headers["retry-after"] == "4"
    blocks = [e["duration_s"] for e in audit_events(box, "auth_source_blocked") if e["source"] == "loopback"]
    assert blocks[-2:] == [2.0, 4.0]


def test_forwarded_headers_cannot_change_the_source_the_lockout_sees(box: Sandbox) -> None:
    # Every client is local: trusting X-Forwarded-For would let one rotate its apparent
    # address and escape the lockout, so the gateway takes the socket's peer, always.
    _wait_unblocked(box)
    stale = "llmc_forged-forwarding-guesser"
    answers = [post(box, "2026-07-28", stale, headers={"X-Forwarded-For": f"203.0.113.{n}",
                                                      "X-Real-IP": f"198.51.100.{n}"}).status_code for n in range(4)]
    assert answers == [401, 401, 401, 429]
    assert {e["source"] for e in audit_events(box, "auth_source_blocked")} == {"loopback"}
    assert not [e for e in audit_events(box) if "203.0.113." in str(e) or "198.51.100." in str(e)]


def test_auth_failures_are_audited_without_the_token(box: Sandbox, tokens: dict[str, str]) -> None:
    post(box, "2025-11-25", tokens["off"])
    # The first failure of a counting window has a line of its own; the rest are summed up when
    # the window ends (auth_failures, by_client), so wait for whichever names "off".
    _wait_for(lambda: any(e.get("client") == "off" and e["reason"] == "client_disabled"
                          for e in audit_events(box, "auth_failed"))
              or any("off" in e["by_client"] for e in audit_events(box, "auth_failures")),
              timeout_s=SECURITY.lockout_window_s + 5)
    assert all(e["source"] == "loopback" for e in audit_events(box) if e["event"].startswith("auth_fail"))
    text = (box.log_dir / "audit.jsonl").read_text()
    for token in (*tokens.values(), box.token):
        assert token not in text


# ---- session tokens ------------------------------------------------------------------------


def _exchange(box: Sandbox, token: str, **body: object) -> httpx.Response:
    return httpx.post(f"{base_url(box)}/session", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_session_token_works_like_the_client_token(box: Sandbox, mode: str) -> None:
    response = _exchange(box, box.token, transport="http", ttl_s=120)
    assert response.status_code == 200, response.text
    session = response.json()["session_token"]

    async def scenario() -> None:
        async with box.client(mode, token=session) as client:
            result = await client.call_tool("chat", {"prompt": "hello"})
        assert not result.is_error

    run(scenario())
    issued = audit_events(box, "session_token_issued")[-1]
    assert issued["client"] == "demo" and issued["transport"] == "http" and issued["ttl_s"] == 120
    assert any(e["transport"] == "http" and e["credential"] == "session_token"
               for e in audit_events(box, "client_connected"))
    if mode == "legacy":
        assert audit_events(box, "mcp_session_opened")


def test_session_token_refusals(box: Sandbox, tokens: dict[str, str]) -> None:
    _wait_unblocked(box)  # a forged token is a guess: during a block it would get a 429
    too_long = _exchange(box, box.token, ttl_s=601)
    assert too_long.status_code == 400 and "at most 600" in too_long.json()["error_description"]
    paused = _exchange(box, tokens["paused"])
    assert paused.status_code == 401 and "disabled" in paused.json()["error_description"]
    stdio_only = _exchange(box, box.token, transport="stdio").json()["session_token"]
    wrong_transport = post(box, "2026-07-28", stdio_only)
    assert wrong_transport.status_code == 401 and "bound to stdio" in wrong_transport.json()["error_description"]
    claims, _ = _exchange(box, box.token).json()["session_token"].split(".")
    forged = post(box, "2026-07-28", f"{claims}.{'A' * 43}")
    assert forged.status_code == 401 and "signature" in forged.json()["error_description"]
    renewal = _exchange(box, stdio_only)
    assert renewal.status_code in (400, 401)


# ---- transport hardening -------------------------------------------------------------------


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("header", "value", "status"), [
    ("Host", "evil.example", 421), ("Host", "127.0.0.1:1", 421), ("Host", "localhost", 421),
    ("Origin", "http://evil.example", 403), ("Origin", "http://127.0.0.1:1", 403), ("Origin", "null", 403),
])
def test_foreign_host_and_origin(box: Sandbox, era: str, header: str, value: str, status: int) -> None:
    assert post(box, era, box.token, headers={header: value}).status_code == status


@pytest.mark.parametrize("path", ["/session", "/healthz", "/.well-known/oauth-protected-resource/mcp"])
def test_other_paths_check_the_host_too(box: Sandbox, path: str) -> None:
    assert httpx.get(f"{base_url(box)}{path}", headers={"Host": "evil.example"}).status_code == 421


@pytest.mark.parametrize("era", ERAS)
def test_own_host_names_are_accepted(box: Sandbox, era: str) -> None:
    port = box.stack.settings.port
    response = post(box, era, box.token, headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
    assert response.status_code == 200


@pytest.mark.parametrize("era", ERAS)
def test_oversized_bodies_are_413_declared_or_streamed(box: Sandbox, era: str) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"chat","arguments":{"prompt":"' \
        + b"x" * (65 * 1024) + b'"}}}'
    assert post(box, era, box.token, body).status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    streamed = httpx.post(box.url, content=chunks(), headers=mcp_headers(era, box.token))
    assert streamed.status_code == 413


MALFORMED = {
    "deep arrays": b"[" * 10_000 + b"]" * 10_000,
    "deep objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "invalid utf-8": b'{"jsonrpc":"2.0","id":1,"method":"tools/list\xff\xfe"}',
    "truncated": b'{"jsonrpc":"2.0","id":1,"method":"tools/ca',
    "empty": b"",
    "not an object": b"42",
    "batch": b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]',
    "wrong version": b'{"jsonrpc":"1.0","id":1,"method":"tools/list"}',
    "object id": b'{"jsonrpc":"2.0","id":{},"method":"tools/list"}',
    "params a list": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}',
    "huge number": b'{"jsonrpc":"2.0","id":1' + b"0" * 5000 + b',"method":"tools/list"}',
    "response posted": b'{"jsonrpc":"2.0","id":1,"result":{}}',
}


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_json_rpc_is_a_json_rpc_error(box: Sandbox, era: str, name: str) -> None:
    response = post(box, era, box.token, MALFORMED[name])
    assert response.status_code in (400, 202), (response.status_code, response.text[:200])
    if response.status_code == 400:
        _json_rpc_error(response)
    assert "Traceback" not in response.text
    assert post(box, era, box.token).status_code == 200  # and the gateway still serves


def test_binding_a_non_loopback_address_is_refused_without_the_opt_in(tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "LLMC_HOST": "0.0.0.0", "LLMC_RUN_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "gateway"], env=env, cwd=REPO_ROOT, capture_output=True,
                          timeout=30)
    assert done.returncode == 2
    assert b"refusing to bind 0.0.0.0" in done.stderr and b"LLMC_ALLOW_NON_LOOPBACK=1" in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
                                  "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
                                  "/register"])
def test_oauth_discovery_gets_a_json_404_saying_how_to_get_a_token(box: Sandbox, path: str) -> None:
    response = httpx.request("POST" if path == "/register" else "GET", f"{base_url(box)}{path}")
    assert response.status_code == 404 and "llm-caller clients add" in response.json()["error_description"]

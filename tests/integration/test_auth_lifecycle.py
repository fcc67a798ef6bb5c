"""Issue #12, items 6 and 10: session tokens die with the client state they were issued for; the 401 is no dead end.

One stack; the operator's commands (`llm-caller clients ...`, `llm-caller token issue`)
run as separate processes against its config and run folders, as on a real install.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from harness.sandbox import Sandbox
from tests.integration.abuse_helpers import cli
from tests.integration.conftest import run
from tests.integration.security_helpers import base_url, now_iso, post, wait_registry_reloaded

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(heartbeat_s=0.25) as sandbox:
        yield sandbox


def _operator(box: Sandbox, *args: str) -> str:
    """An operator command against this stack's config folder; its stdout."""
    done = cli(*args, "--config-dir", str(box.stack.settings.config_dir))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _add(box: Sandbox, name: str) -> str:
    return _operator(box, "clients", "add", name, "--print-token").strip()


def _sessions(box: Sandbox, name: str, client_token: str) -> dict[str, str]:
    """Two session tokens for ``name``: from POST /session, and from `token issue` with its defaults."""
    exchanged = httpx.post(f"{base_url(box)}/session", json={"ttl_s": 3600},
                           headers={"Authorization": f"Bearer {client_token}"})
    assert exchanged.status_code == 200, exchanged.text
    # The gateway's key named outright: this test is about revocation (the default key has its own test).
    issued = cli("token", "issue", "--client", name, "--ttl", "1d", "--key", str(box.stack.settings.session_key_file),
                 cwd=box.root, env=_operator_env(box))
    assert issued.returncode == 0, issued.stderr
    return {"POST /session": exchanged.json()["session_token"], "token issue": issued.stdout.strip()}


def _statuses(box: Sandbox, tokens: dict[str, str]) -> dict[str, int]:
    return {how: post(box, "2026-07-28", token).status_code for how, token in tokens.items()}


@pytest.mark.parametrize("change", ["rotate", "remove+add", "disable", "disable+enable"])
def test_a_client_change_ends_every_session_token_issued_before(box: Sandbox, change: str) -> None:
    name = f"c-{change.replace('+', '-')}"
    since = now_iso()
    token = _add(box, name)
    wait_registry_reloaded(box, since)
    sessions = _sessions(box, name, token)
    before = _statuses(box, sessions)
    since = now_iso()
    for step in change.split("+"):
        _operator(box, "clients", step, name, *(["--print-token"] if step in ("rotate", "add") else []))
    wait_registry_reloaded(box, since)
    after = {how: post(box, "2026-07-28", t) for how, t in sessions.items()}
    print(f"\n{change}: session tokens before {before}, after "
          f"{ {how: (r.status_code, r.json()['error_description'][:70]) for how, r in after.items()} }")
    assert before == {"POST /session": 200, "token issue": 200}
    assert {r.status_code for r in after.values()} == {401}


def _operator_env(box: Sandbox) -> dict[str, str]:
    """An operator's shell that knows only where the stack runs: the config folder, the port and
    the session key come from the stack's record in its run folder (RUN_DIR/stack.json)."""
    return {"HOME": str(box.root / "home"), "LLMC_RUN_DIR": str(box.stack.settings.run_dir)}


def test_token_issue_with_its_defaults_works_against_the_running_gateway(box: Sandbox) -> None:
    issued = cli("token", "issue", "--client", "demo", "--ttl", "15m", cwd=box.root, env=_operator_env(box))
    print(f"\n`llm-caller token issue --client demo --ttl 15m` (exit {issued.returncode}): {issued.stderr.strip()}")
    assert issued.returncode == 0, issued.stderr

    async def call() -> bool:
        async with box.client(token=issued.stdout.strip()) as client:
            return not (await client.call_tool("getHealth", {})).is_error

    assert run(call())


def _challenge_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer"
    params = {}
    for part in rest.split('", '):
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip().strip('"')
    return params


@pytest.mark.parametrize("token", [None, "llmc_not-a-real-token"])
def test_the_401_points_at_nothing_that_does_not_exist(box: Sandbox, token: str | None) -> None:
    response = post(box, "2026-07-28", token)
    assert response.status_code == 401
    params = _challenge_params(response.headers["www-authenticate"])
    print(f"\n401 WWW-Authenticate: {response.headers['www-authenticate']}\n401 body: {response.text}")
    for key, value in params.items():  # every URL the challenge names must answer
        if value.startswith("http"):
            assert httpx.get(value).status_code == 200, f"{key} names {value}, which does not exist"
    assert "llm-caller clients add" in params["error_description"]
    assert "llm-caller clients add" in response.json()["error_description"]


class _Memory:
    """Token storage for the SDK's OAuth client: nothing stored yet."""

    async def get_tokens(self) -> OAuthToken | None:
        return None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        return None

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        return None


def test_an_oauth_client_is_told_how_to_get_a_token(box: Sandbox) -> None:
    """The official SDK's OAuth client follows whatever discovery the gateway offers; it must end in a
    refusal that says how to get a token, having been sent nowhere that does not exist."""
    seen: list[tuple[str, int]] = []

    async def attempt() -> str:
        metadata = OAuthClientMetadata.model_validate({"redirect_uris": ["http://127.0.0.1:1/cb"]})
        auth = OAuthClientProvider(box.url, metadata, _Memory())
        async with httpx2.AsyncClient(auth=auth, event_hooks={"response": [_hook(seen)]}) as http:
            try:
                await http.post(box.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                headers={"Accept": "application/json, text/event-stream"})
            except Exception as exc:  # the SDK raises its own error types
                return f"{type(exc).__name__}: {exc}"
        return "no error"

    outcome = run(attempt())
    print(f"\nthe SDK's OAuth client asked: {seen}\nand stopped with: {outcome[:300]}")
    assert "llm-caller clients add" in outcome
    assert all(status != 200 or "/.well-known/" not in path for path, status in seen), seen


def _hook(seen: list[tuple[str, int]]) -> Any:
    async def record(response: Any) -> None:
        seen.append((f"{response.request.method} {response.request.url.path}", response.status_code))

    return record

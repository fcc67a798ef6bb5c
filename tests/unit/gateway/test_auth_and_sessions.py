"""Client and session tokens at the gateway: the verifier, the session key, the guard and /session in-process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.access import AccessControl
from gateway.app import allowed_hosts, bind_refusal
from gateway.auth import RegistryTokenVerifier, current_auth
from gateway.guard import SecurityGuard
from gateway.lockout import LockoutPolicy
from gateway.session_endpoint import load_or_create_session_key, session_routes
from shared.files import write_json_atomic
from shared.session_tokens import issue_session_token, session_binding
from shared.settings import SecuritySettings, Settings
from shared.tokens import hash_token, new_token
from stdio_front.credential import Credential, FrontError, GatewayAuth
from stdio_front.front import FrontConfig

KEY = bytes(range(32))
PORT = 8765
HOST = f"127.0.0.1:{PORT}"
METADATA = f"http://{HOST}/.well-known/oauth-protected-resource/mcp"


class World:
    """A registry with three clients, a verifier with session tokens on, and the guarded app."""

    def __init__(self, tmp_path: Path, threshold: int = 50) -> None:
        self.tokens = {name: new_token() for name in ("editor", "off", "old")}
        self.registry = tmp_path / "client-registry.json"
        self.write({"editor": {}, "off": {"disabled": True}, "old": {"expires_at": int(time.time()) - 60}})
        self.settings = Settings(config_dir=tmp_path, run_dir=tmp_path / "run", log_dir=tmp_path / "logs",
                                 port=PORT, security=SecuritySettings(session_max_ttl_s=1800))
        self.verifier = RegistryTokenVerifier(self.registry)
        self.verifier.enable_session_tokens(KEY)
        self.access = AccessControl(self.verifier, LockoutPolicy(threshold=threshold), self.settings.audit_file)
        hosts = allowed_hosts(self.settings)
        app = Starlette(routes=[Route("/mcp", _whoami, methods=["POST"]), *session_routes(self.access, self.settings)])
        self.app = SecurityGuard(app, self.access, hosts=hosts, origins=[f"http://{h}" for h in hosts],
                                 max_body_bytes=5000, auth_paths=("/mcp", "/session"), mcp_path="/mcp")

    def write(self, clients: dict[str, dict[str, Any]]) -> None:
        entries = {name: {"token_sha256": hash_token(self.tokens[name]), **extra} for name, extra in clients.items()}
        write_json_atomic(self.registry, {"clients": entries}, mode=0o600)
        _BINDINGS.clear()
        _BINDINGS.update({name: session_binding(e["token_sha256"], e.get("session_generation", 0))
                          for name, e in entries.items()})

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Host": HOST, **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)  # client address 127.0.0.1
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
                return await client.request(method, path, headers=headers, **kwargs)

        return asyncio.run(go())

    def audit(self) -> list[dict[str, Any]]:
        path = self.settings.audit_file
        return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def _whoami(_request: Request) -> Response:
    result = current_auth()
    assert result is not None and result.ok
    return JSONResponse({"client": result.client_id, "kind": result.kind, "transport": result.transport})


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


_BINDINGS: dict[str, str] = {}  # client -> binding in the current World (set by World.write)


def _session(client: str = "editor", transport: str = "http", ttl: float = 600, now: float | None = None) -> str:
    binding = _BINDINGS.get(client, session_binding("0" * 64, 0))
    return issue_session_token(KEY, client, transport, ttl, now=now, binding=binding)  # type: ignore[arg-type]


# ---- the verifier -------------------------------------------------------------------------


def test_client_and_session_tokens_are_accepted(world: World) -> None:
    by_token = world.verifier.authenticate(world.tokens["editor"], "http")
    by_session = world.verifier.authenticate(_session(transport="stdio"), "stdio")
    assert by_token.ok and by_token.client_id == "editor" and by_token.kind == "client_token"
    assert by_session.ok and by_session.client_id == "editor" and by_session.kind == "session_token"
    assert by_session.access is not None and by_session.access.expires_at is not None
    assert by_session.access.token != _session()  # the SDK only ever holds a hash


@pytest.mark.parametrize(("token", "transport", "reason", "says"), [
    ("llmc_unknown", "http", "unknown_token", "not valid"),
    ("off", "http", "client_disabled", "clients enable off"),
    ("old", "http", "client_expired", "clients rotate old"),
    ("session:editor:stdio", "http", "session_transport", "bound to stdio"),
    ("session:off:http", "http", "client_disabled", "disabled"),
    ("session:ghost:http", "http", "client_removed", "no longer registered"),
])
def test_refusals_say_why(world: World, token: str, transport: str, reason: str, says: str) -> None:
    if token.startswith("session:"):
        _, client, bound = token.split(":")
        token = _session(client, bound)
    else:
        token = world.tokens.get(token, token)
    result = world.verifier.authenticate(token, transport)  # type: ignore[arg-type]
    assert not result.ok and result.reason == reason and says in result.description
    assert token not in result.description


def test_forged_and_expired_session_tokens(world: World) -> None:
    body = _session().split(".")[0]
    forged = world.verifier.authenticate(body + "." + "A" * 43, "http")
    expired = world.verifier.authenticate(_session("editor", "http", 60, now=time.time() - 120),
                                          "http")
    assert forged.reason == "session_signature" and expired.reason == "session_expired"
    assert "POST /session" in expired.description


def test_session_tokens_refused_when_the_key_is_unavailable(world: World) -> None:
    world.verifier.enable_session_tokens(None, "session tokens are unavailable on this gateway")
    result = world.verifier.authenticate(_session(), "http")
    assert result.reason == "session_tokens_unavailable" and "unavailable" in result.description


def test_disabling_a_client_ends_its_session_tokens(world: World) -> None:
    token = _session()
    assert world.verifier.authenticate(token, "http").ok
    world.write({"editor": {"disabled": True, "session_generation": 1}})
    world.verifier._checked = 0.0  # skip the once-a-second re-read throttle
    assert world.verifier.authenticate(token, "http").reason == "client_disabled"
    world.write({"editor": {"session_generation": 1}})  # enabled again, as `clients enable` leaves it
    world.verifier._checked = 0.0
    assert world.verifier.authenticate(token, "http").reason == "session_revoked"
    assert world.verifier.authenticate(_session(), "http").ok


def test_rotating_or_re_adding_a_client_ends_its_session_tokens(world: World) -> None:
    token = _session()
    world.tokens["editor"] = new_token()  # rotate (or remove and add again: a new token either way)
    world.write({"editor": {}})
    world.verifier._checked = 0.0
    refused = world.verifier.authenticate(token, "http")
    assert refused.reason == "session_revoked" and "rotated" in refused.description
    assert refused.client_id == "editor"


# ---- the session key ----------------------------------------------------------------------


def test_default_key_is_created_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(config_dir=tmp_path, run_dir=tmp_path / "run", log_dir=tmp_path / "logs")
    settings.ensure_run_dir()
    key, problem = load_or_create_session_key(settings)
    assert key is not None and len(key) == 32 and problem == ""
    assert oct(settings.session_key_file.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_session_key(settings)[0] == key  # a restart keeps it


def test_an_explicit_missing_or_open_key_disables_session_tokens(tmp_path: Path) -> None:
    missing = tmp_path / "nope.secret"
    settings = Settings(config_dir=tmp_path, run_dir=tmp_path, log_dir=tmp_path,
                        security=SecuritySettings(session_key_file=missing))
    assert load_or_create_session_key(settings) == (None, load_or_create_session_key(settings)[1])
    assert not missing.exists()
    missing.write_text(KEY.hex())
    missing.chmod(0o644)
    key, problem = load_or_create_session_key(settings)
    assert key is None and "unavailable" in problem and str(missing) not in problem


# ---- the guard and /session ---------------------------------------------------------------


def test_exchange_and_use_a_session_token(world: World) -> None:
    response = world.request("POST", "/session", world.tokens["editor"], json={"transport": "stdio", "ttl_s": 120})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    data = response.json()
    assert data["client_id"] == "editor" and data["transport"] == "stdio" and data["token_type"] == "Bearer"
    assert data["expires_at"] - time.time() == pytest.approx(120, abs=3)
    session = data["session_token"]
    used = world.request("POST", "/mcp", session, headers={"X-LLMC-Transport": "stdio"})
    assert used.json() == {"client": "editor", "kind": "session_token", "transport": "stdio"}
    described = world.request("GET", "/session", session, headers={"X-LLMC-Transport": "stdio"})
    assert described.json()["credential"] == "session_token"
    wrong_door = world.request("POST", "/mcp", session)
    assert wrong_door.status_code == 401 and "bound to stdio" in wrong_door.json()["error_description"]
    issued = [e for e in world.audit() if e["event"] == "session_token_issued"]
    assert issued and issued[0]["client"] == "editor" and issued[0]["transport"] == "stdio"
    assert session not in world.settings.audit_file.read_text()


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"ttl_s": 1801}, 400, "at most 1800"),
    ({"ttl_s": 0}, 400, "ttl_s"),
    ({"ttl_s": True}, 400, "ttl_s"),
    ({"ttl_s": "900"}, 400, "ttl_s"),
    ({"transport": "carrier-pigeon"}, 400, "transport"),
    ({"scope": "admin"}, 400, "scope: unknown field"),
    ([1, 2], 400, "JSON object"),
    (b"{not json", 400, "not valid JSON"),
    (b"[" * 1100 + b"]" * 1100, 400, "not valid JSON"),
    (b"{" * 4500, 413, "larger than"),
    (b"\xff\xfe", 400, "not valid JSON"),
])
def test_bad_exchange_requests(world: World, body: Any, status: int, says: str) -> None:
    if isinstance(body, bytes):
        response = world.request("POST", "/session", world.tokens["editor"], content=body,
                                 headers={"Content-Type": "application/json"})
    else:
        response = world.request("POST", "/session", world.tokens["editor"], json=body)
    assert response.status_code == status and says in response.json()["error_description"]


def test_a_session_token_cannot_be_exchanged_for_another(world: World) -> None:
    response = world.request("POST", "/session", _session(), json={})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_exchange_without_a_key_is_503(world: World) -> None:
    world.verifier.enable_session_tokens(None, "session tokens are unavailable on this gateway")
    assert world.request("POST", "/session", world.tokens["editor"], json={}).status_code == 503


@pytest.mark.parametrize(("who", "says"), [(None, "authentication required"), ("llmc_nope", "not valid"),
                                           ("off", "disabled"), ("old", "expired")])
def test_401_challenge_names_the_problem(world: World, who: str | None, says: str) -> None:
    token = world.tokens.get(who, who) if who else None
    response = world.request("POST", "/mcp", token)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"') and "resource_metadata" not in challenge
    assert says in response.json()["error_description"] and says in challenge
    assert "llm-caller clients" in response.json()["error_description"]


def test_lockout_answers_429_to_guesses_and_lets_valid_tokens_in(tmp_path: Path) -> None:
    world = World(tmp_path, threshold=3)
    for _ in range(3):
        assert world.request("POST", "/mcp", "llmc_wrong").status_code == 401
    blocked = world.request("POST", "/mcp", "llmc_wrong")
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) == 30
    assert blocked.json()["error"]["data"]["reason"] == "too_many_failures"
    assert world.request("POST", "/mcp", world.tokens["editor"]).status_code == 200  # checked first, admitted
    assert world.request("POST", "/mcp", world.tokens["off"]).status_code == 401  # names its client: says why
    events = [e["event"] for e in world.audit()]
    assert events.count("auth_failed") == 1 and events.count("auth_source_blocked") == 1


def test_a_missing_token_is_not_counted(tmp_path: Path) -> None:
    world = World(tmp_path, threshold=2)
    for _ in range(5):
        assert world.request("POST", "/mcp").status_code == 401
    assert world.audit() == []


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "evil.example"}, 421),
    ({"Host": "127.0.0.1:9999"}, 421),
    ({"Host": "127.0.0.1"}, 421),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "http://localhost:5173"}, 403),
    ({"Origin": "null"}, 403),
    ({"Content-Length": "5001"}, 413),
    ({"X-LLMC-Transport": "smtp"}, 400),
])
def test_screening(world: World, headers: dict[str, str], status: int) -> None:
    content = b"x" * int(headers.get("Content-Length", "2"))
    assert world.request("POST", "/mcp", world.tokens["editor"], headers=headers, content=content).status_code \
        == status


def test_own_origin_and_localhost_are_fine(world: World) -> None:
    headers = {"Origin": f"http://localhost:{PORT}", "Host": f"localhost:{PORT}"}
    assert world.request("POST", "/mcp", world.tokens["editor"], headers=headers).status_code == 200


# ---- bind policy and settings -------------------------------------------------------------


def test_bind_policy(tmp_path: Path) -> None:
    def settings(host: str, allow: bool = False) -> Settings:
        return Settings(config_dir=tmp_path, run_dir=tmp_path, log_dir=tmp_path, host=host, port=PORT,
                        security=SecuritySettings(allow_non_loopback=allow))

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert bind_refusal(settings(host)) is None
    refusal = bind_refusal(settings("0.0.0.0"))
    assert refusal is not None and "LLMC_ALLOW_NON_LOOPBACK=1" in refusal
    assert bind_refusal(settings("0.0.0.0", allow=True)) is None
    assert allowed_hosts(settings("127.0.0.1")) == [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"]
    assert f"192.0.2.5:{PORT}" in allowed_hosts(settings("192.0.2.5", allow=True))
    assert len(allowed_hosts(settings("0.0.0.0", allow=True))) == 3


def test_security_settings_from_env_round_trip() -> None:
    env = {"LLMC_LOCKOUT_THRESHOLD": "4", "LLMC_LOCKOUT_WINDOW_S": "2.5", "LLMC_MAX_BODY_BYTES": "1024",
           "LLMC_ALLOW_NON_LOOPBACK": "1", "LLMC_SESSION_KEY_FILE": "/k/session.secret"}
    settings = SecuritySettings.from_env(env)
    assert (settings.lockout_threshold, settings.lockout_window_s, settings.max_body_bytes) == (4, 2.5, 1024)
    assert settings.allow_non_loopback and settings.session_key_file == Path("/k/session.secret")
    assert SecuritySettings.from_env(settings.to_env()) == settings
    assert SecuritySettings.from_env({}) == SecuritySettings()


@pytest.mark.parametrize("env", [{"LLMC_LOCKOUT_THRESHOLD": "0"}, {"LLMC_LOCKOUT_THRESHOLD": "2.5"},
                                 {"LLMC_LOCKOUT_WINDOW_S": "soon"}, {"LLMC_MAX_BODY_BYTES": "inf"},
                                 {"LLMC_LOCKOUT_BASE_S": "nan"}])
def test_bad_security_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        SecuritySettings.from_env(env)


# ---- the STDIO front end's configuration and credential -------------------------------------


@pytest.mark.parametrize(("env", "expected"), [
    ({"LLMC_TOKEN": "llmc_x"}, "http://127.0.0.1:8765"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_PORT": "9000"}, "http://127.0.0.1:9000"),
    ({"LLMC_TOKEN": "llmcs_x", "LLMC_GATEWAY_URL": "http://localhost:8123/mcp"}, "http://localhost:8123"),
    ({"LLMC_TOKEN": " llmc_x ", "LLMC_GATEWAY_URL": "http://[::1]:8123/"}, "http://[::1]:8123"),
])
def test_front_config(env: dict[str, str], expected: str) -> None:
    config = FrontConfig.from_env(env)
    assert config.gateway == expected and config.token == env["LLMC_TOKEN"].strip()


@pytest.mark.parametrize(("env", "says"), [
    ({}, "LLMC_TOKEN is not set"),
    ({"LLMC_TOKEN": "  "}, "LLMC_TOKEN is not set"),
    ({"LLMC_TOKEN": "sk-ant-a-provider-key"}, "not an LLM Caller token"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_GATEWAY_URL": "http://192.0.2.1:8765"}, "LLMC_GATEWAY_URL"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_GATEWAY_URL": "https://127.0.0.1:8765"}, "LLMC_GATEWAY_URL"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_GATEWAY_URL": "http://127.0.0.1"}, "LLMC_GATEWAY_URL"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_GATEWAY_URL": "http://127.0.0.1:99999"}, "LLMC_GATEWAY_URL"),
    ({"LLMC_TOKEN": "llmc_x", "LLMC_PORT": "eighty"}, "LLMC_GATEWAY_URL"),
])
def test_front_config_refusals(env: dict[str, str], says: str) -> None:
    with pytest.raises(FrontError) as caught:
        FrontConfig.from_env(env)
    assert caught.value.code == 2 and says in str(caught.value)


def test_gateway_auth_renews_once_on_a_401() -> None:
    seen: list[str] = []
    issued = iter(["llmcs_first", "llmcs_second"])

    def gateway(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/session":
            return httpx2.Response(200, json={"session_token": next(issued), "client_id": "editor",
                                              "expires_at": time.time() + 900})
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer llmcs_first":
            return httpx2.Response(401, json={"error": "invalid_token", "error_description": "signature"})
        return httpx2.Response(200, json={"ok": True})

    async def scenario() -> Credential:
        transport = httpx2.MockTransport(gateway)
        async with httpx2.AsyncClient(transport=transport) as plain:
            credential = Credential("http://127.0.0.1:1", "llmc_client", 900, plain)
            await credential.start()
            async with httpx2.AsyncClient(transport=transport, auth=GatewayAuth(credential)) as http:
                response = await http.post("http://127.0.0.1:1/mcp", content=b"{}")
            assert response.status_code == 200
            return credential

    credential = asyncio.run(scenario())
    assert seen == ["Bearer llmcs_first", "Bearer llmcs_second"]
    assert credential.session == "llmcs_second" and credential.last_refusal is None


def test_a_session_token_is_not_renewed_and_its_refusal_is_kept() -> None:
    def gateway(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/session":
            return httpx2.Response(200, json={"client_id": "editor", "expires_at": time.time() + 60})
        return httpx2.Response(401, json={"error": "invalid_token", "error_description": "client 'editor' is "
                                          "disabled"})

    async def scenario() -> Credential:
        transport = httpx2.MockTransport(gateway)
        async with httpx2.AsyncClient(transport=transport) as plain:
            credential = Credential("http://127.0.0.1:1", "llmcs_given", 900, plain)
            await credential.start()
            async with httpx2.AsyncClient(transport=transport, auth=GatewayAuth(credential)) as http:
                assert (await http.post("http://127.0.0.1:1/mcp", content=b"{}")).status_code == 401
            return credential

    credential = asyncio.run(scenario())
    assert not credential.renewable and credential.last_refusal == "client 'editor' is disabled"


def test_up_allow_non_loopback_reaches_the_gateways_environment() -> None:
    from cli.main import build_parser
    from cli.options import resolve_settings
    from cli.stack import scrubbed_environment

    opted_in = resolve_settings(build_parser().parse_args(["up", "--allow-non-loopback"]), remembered=False)
    default = resolve_settings(build_parser().parse_args(["up"]), remembered=False)
    assert scrubbed_environment(opted_in, {})["LLMC_ALLOW_NON_LOOPBACK"] == "1"
    assert scrubbed_environment(default, {}).get("LLMC_ALLOW_NON_LOOPBACK", "0") == "0"


def test_guard_trims_optional_whitespace_around_header_values() -> None:
    from gateway.guard import _trim_header_values

    clean = [(b"mcp-name", b"chat")]
    assert _trim_header_values(clean) is clean  # nothing to copy in the common case
    assert _trim_header_values([(b"mcp-name", b" chat\t"), (b"host", b"127.0.0.1:1")]) == [
        (b"mcp-name", b"chat"), (b"host", b"127.0.0.1:1")]

"""No provider key or client token in any other process, log, health output or error message."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox
from tests.integration.conftest import clear_faults, inject, process_pid, run
from tests.integration.security_helpers import add_clients, base_url, post

pytestmark = pytest.mark.integration


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_keys_only_in_their_own_workers_environment_or_handoff(box: Sandbox) -> None:
    openai_key, anthropic_key = box.keys["openai"].encode(), box.keys["anthropic"].encode()
    supervisord_pid = box.stack.supervisord_pid()
    assert supervisord_pid is not None
    for pid in (supervisord_pid, process_pid(box, "gateway"), process_pid(box, "worker-lmstudio"),
                process_pid(box, "worker-openai"), process_pid(box, "worker-anthropic")):
        # A non-dumpable child's environ is closed to other processes of its user (not to root).
        with contextlib.suppress(PermissionError):
            env = _environ(pid)
            assert openai_key not in env and anthropic_key not in env and b"OPENAI_API_KEY" not in env
    handoff = box.stack.settings.secrets_dir
    assert oct(handoff.stat().st_mode & 0o777) == "0o700"
    assert oct((handoff / "openai").stat().st_mode & 0o777) == "0o600"


def test_provider_echoing_the_key_is_redacted_everywhere(box: Sandbox) -> None:
    inject(box, "openai", {"path": "/v1/chat/completions", "mode": "echo_key_in_error", "status": 401})
    inject(box, "anthropic", {"path": "/v1/messages", "mode": "echo_key_in_error", "status": 400})

    async def scenario() -> list[str]:
        texts = []
        async with box.client() as client:
            for provider in ("openai", "anthropic"):
                result = await client.call_tool("chat", {"prompt": "leak?", "provider": provider})
                assert result.is_error
                texts.append(str(result.structured_content) + str(result.content))
            texts.append(str(await client.call_tool("getHealth", {})))
        return texts

    try:
        texts = run(scenario())
    finally:
        clear_faults(box)
    assert "auth" in texts[0]
    for text in texts:
        assert box.keys["openai"] not in text and box.keys["anthropic"] not in text


def test_no_secret_in_any_log_file(box: Sandbox) -> None:
    # Drive a few failure paths first so error logging has run.
    inject(box, "openai", {"mode": "status", "status": 500}, {"mode": "echo_key_in_error", "status": 401})

    async def scenario() -> None:
        async with box.client() as client:
            for _ in range(2):
                await client.call_tool("chat", {"prompt": "x", "provider": "openai"})
        async with box.client(token="llmc_wrongwrongwrongwrong") as client:
            await client.call_tool("getHealth", {})

    try:
        with pytest.raises(BaseException, match="unhandled errors"):  # the wrong-token client fails by design
            run(scenario())
    finally:
        clear_faults(box)
    logs = list(box.log_dir.glob("*.log"))
    assert {p.name for p in logs} >= {"gateway.log", "worker-openai.log", "supervisord.log"}
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in (*box.keys.values(), box.token):
            assert secret not in text, f"secret found in {path.name}"


def test_worker_without_its_key_reports_unconfigured() -> None:
    with Sandbox(withhold_keys=("anthropic",), heartbeat_s=0.25) as sandbox:
        async def scenario() -> None:
            async with sandbox.client() as client:
                for _ in range(100):
                    health = await client.call_tool("getHealth", {})
                    assert health.structured_content is not None
                    workers = {w["provider"]: w for w in health.structured_content["workers"]}
                    if all(w["up"] for w in workers.values()):
                        break
                assert workers["anthropic"]["status"] == "unconfigured"
                assert health.structured_content["status"] == "degraded"
                result = await client.call_tool("chat", {"prompt": "x", "provider": "anthropic"})
                assert result.is_error and result.structured_content is not None
                error = result.structured_content["error"]
                assert error["type"] == "unavailable" and "no API key" in error["message"]
                assert "ANTHROPIC_API_KEY" not in error["message"]
                ok = await client.call_tool("chat", {"prompt": "x", "provider": "openai"})
                assert not ok.is_error

        run(scenario())
        log = (sandbox.log_dir / "worker-anthropic.log").read_text()
        assert "unconfigured" in log and "ANTHROPIC_API_KEY" not in log


def test_no_secret_leaks_from_the_front_ends_error_paths(box: Sandbox) -> None:
    """Plant a distinct secret per provider and client, walk every refusal path, then search everything."""
    tokens = add_clients(box, second={}, paused={"disabled": True})
    session_url = f"{base_url(box)}/session"

    def exchange(token: str, transport: str) -> str:
        response = httpx.post(session_url, json={"transport": transport},
                              headers={"Authorization": f"Bearer {token}"})
        return str(response.json()["session_token"])

    sessions = [exchange(box.token, "http"), exchange(tokens["second"], "stdio")]
    forged = sessions[0].split(".")[0] + "." + "Q" * 43
    guessed = "llmc_" + "g" * 43
    answers: list[str] = []
    for _ in range(11):  # past the default threshold of 10: the last answer is a 429
        answers.append(post(box, "2026-07-28", guessed).text)
    for credential in (tokens["paused"], forged, sessions[1], "llmcs_" + "x" * 60):
        answers.append(post(box, "2025-11-25", credential).text)
        answers.append(httpx.post(session_url, json={}, headers={"Authorization": f"Bearer {credential}"}).text)
    assert '"too_many_failures"' in answers[10]

    inject(box, "openai", {"path": "/v1/chat/completions", "mode": "echo_key_in_error", "status": 401})

    async def calls() -> list[str]:
        async with box.client(token=sessions[0]) as client:
            echoed = await client.call_tool("chat", {"prompt": "leak?", "provider": "openai"})
            health = await client.call_tool("getHealth", {})
        return [str(echoed.structured_content), str(health.structured_content)]

    try:
        answers += run(calls())
    finally:
        clear_faults(box)
    front = [subprocess.run([str(REPO_ROOT / ".venv/bin/llm-caller"), "stdio"], input=b"", capture_output=True,
                            timeout=30, env={"PATH": os.environ["PATH"], "LLMC_TOKEN": token,
                                             "LLMC_GATEWAY_URL": base_url(box)}) for token in (guessed, forged)]
    assert [done.returncode for done in front] == [2, 2]
    answers += [done.stderr.decode() + done.stdout.decode() for done in front]

    secrets = [*box.keys.values(), box.token, *tokens.values(), *sessions, forged, guessed,
               box.stack.settings.session_key_file.read_text().strip()]
    # The tail alone too: a masked prefix must not leave the random part readable.
    secrets += [secret[-24:] for secret in secrets]
    haystacks = {path.name: path.read_text(errors="replace") for path in box.log_dir.iterdir() if path.is_file()}
    haystacks.update({f"answer {index}": text for index, text in enumerate(answers)})
    assert "audit.jsonl" in haystacks and "gateway.log" in haystacks
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a planted secret appears in {where}"

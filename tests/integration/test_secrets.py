"""No provider key or client token in any other process, log, health output or error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.sandbox import Sandbox
from tests.integration.conftest import clear_faults, inject, process_pid, run

pytestmark = pytest.mark.integration


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_keys_only_in_their_own_workers_environment_or_handoff(box: Sandbox) -> None:
    openai_key, anthropic_key = box.keys["openai"].encode(), box.keys["anthropic"].encode()
    supervisord_pid = box.stack.supervisord_pid()
    assert supervisord_pid is not None
    for pid in (supervisord_pid, process_pid(box, "gateway"), process_pid(box, "workers:lmstudio"),
                process_pid(box, "workers:openai"), process_pid(box, "workers:anthropic")):
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

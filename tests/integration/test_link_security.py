"""The authenticated worker link in real processes: the launcher's key, rogues, refusals, CurveZMQ over tcp."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.stack import REPO_ROOT, scrubbed_environment
from harness.sandbox import Sandbox, free_port, mcp_client
from shared.link_auth import prove
from shared.link_keys import ensure_link_key, load_curve_client
from shared.link_session import LinkSession
from shared.protocol import Command, encode
from shared.settings import LinkSettings, Settings
from tests.integration.conftest import process_pid, run
from tests.unit.link_fakes import WRONG_KEY, FakeWorker

pytestmark = pytest.mark.integration


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    return [line for line in lines if line.get("event") == name]


def _wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_launcher_creates_a_private_link_key_and_hands_over_only_its_path(box: Sandbox) -> None:
    settings = box.stack.settings
    key_file = settings.link_key_file
    assert key_file == settings.run_dir / "link.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key_hex = key_file.read_text().strip()
    env = scrubbed_environment(settings)
    assert env["LLMC_LINK_KEY_FILE"] == str(key_file)
    assert not any(key_hex in value for value in env.values())
    # Log lines reach the file within the log thread's gathering window (D18), not at once.
    _wait_for(lambda: {e["worker"] for e in _events(box.log_dir / "gateway.log", "worker_ready")}
              == {"openai", "anthropic", "lmstudio"})
    for log in box.log_dir.glob("*.log"):
        assert key_hex not in log.read_text(errors="replace")


def test_rogue_worker_on_the_real_socket_is_refused_and_never_served(box: Sandbox) -> None:
    async def scenario() -> None:
        rogue = FakeWorker(box.stack.settings.worker_endpoint, name="openai", key=WRONG_KEY)
        try:
            nonce, challenge = await rogue.hello()
            gateway_nonce = bytes.fromhex(challenge.payload["nonce"])
            rogue.session = LinkSession(WRONG_KEY, "openai", nonce, gateway_nonce, "worker")
            ready = {"provider": "openai", "incarnation": "rogue", "challenge": gateway_nonce.hex(),
                     "proof": prove(WRONG_KEY, gateway_nonce, "openai", "worker").hex()}
            await rogue.send_raw(encode(Command.READY, "", ready, rogue.session.sign))
            async with box.client() as client:
                reply = await client.call_tool("chat", {"prompt": "still me?", "provider": "openai"})
            assert not reply.is_error, reply.content
            await rogue.nothing_but(set(), 0.3)
        finally:
            rogue.close()

    run(scenario())
    _wait_for(lambda: any(e["reason"] == "bad_proof"
                          for e in _events(box.log_dir / "gateway.log", "link_auth_failed")))


def test_gateway_restart_needs_no_worker_restart(box: Sandbox) -> None:
    workers = ("worker-openai", "worker-anthropic", "worker-lmstudio")
    pids = {name: process_pid(box, name) for name in workers}
    box.stack.restart_worker("gateway")
    box.stack.wait_ready()
    box.wait_workers_up()  # each worker handshook with the new gateway...
    assert {name: process_pid(box, name) for name in workers} == pids  # ...without restarting

    async def scenario() -> None:
        async with box.client() as client:
            reply = await client.call_tool("chat", {"prompt": "new gateway", "provider": "anthropic"})
        assert not reply.is_error, reply.content

    run(scenario())


@pytest.mark.parametrize("program", [["gateway"], ["workers", "openai"]])
def test_processes_refuse_an_open_or_missing_link_key(box: Sandbox, tmp_path: Path, program: list[str]) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    settings = Settings(config_dir=box.stack.settings.config_dir, run_dir=run_dir, log_dir=run_dir / "logs",
                        port=free_port())
    env = scrubbed_environment(settings)
    open_key = tmp_path / "open.key"
    open_key.write_text(os.urandom(32).hex() + "\n")
    open_key.chmod(0o640)
    for key_file, expected in ((open_key, "open to group or others"), (tmp_path / "absent.key", "not found")):
        env["LLMC_LINK_KEY_FILE"] = str(key_file)
        out = subprocess.run([sys.executable, "-m", *program], env=env, cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        assert expected in out.stderr and str(key_file) in out.stderr
        if key_file.exists():
            assert key_file.read_text().strip() not in out.stderr + out.stdout


# ---- tcp:// with CurveZMQ, keys made by `llm-caller keys generate --kind curve` ----------


def _keys(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", "keys", "generate", "--kind", "curve", *args],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tcp_stack(box: Sandbox, tmp_path: Path) -> Iterator[tuple[Settings, Path, Path]]:
    """A second gateway and an lmstudio worker on tcp://127.0.0.1 with CURVE, sharing box's config."""
    curve = tmp_path / "curve"
    _keys("--out", str(curve))
    for name in ("lmstudio", "openai"):
        _keys("--name", name, "--out", str(curve / "workers"))
    _keys("--name", "stray", "--out", str(tmp_path / "stray" / "workers"))
    (tmp_path / "stray" / "gateway.key").write_bytes((curve / "gateway.key").read_bytes())
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    link = LinkSettings(worker_endpoint=f"tcp://127.0.0.1:{free_port()}", curve_dir=curve)
    settings = Settings(config_dir=box.stack.settings.config_dir, run_dir=run_dir, log_dir=run_dir / "logs",
                        port=free_port(), heartbeat_s=0.25, link=link)
    ensure_link_key(settings.link_key_file)
    env = scrubbed_environment(settings)
    gateway_log, worker_log = tmp_path / "gateway.log", tmp_path / "worker.log"
    processes = [
        subprocess.Popen([sys.executable, "-m", *program], env=env, cwd=REPO_ROOT, stdout=log.open("wb"),
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for program, log in ((["gateway"], gateway_log), (["workers", "lmstudio"], worker_log))
    ]
    try:
        yield settings, gateway_log, tmp_path / "stray"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_curve_link_serves_its_worker_and_drops_impostors(box: Sandbox, tcp_stack: tuple[Settings, Path, Path]) -> None:
    settings, gateway_log, stray = tcp_stack
    _wait_for(lambda: any(e["worker"] == "lmstudio" for e in _events(gateway_log, "worker_ready")), 20.0)

    async def scenario() -> None:
        url = f"http://127.0.0.1:{settings.port}/mcp"
        async with mcp_client(url, box.token) as client:
            reply = await client.call_tool("chat", {"prompt": "over curve", "provider": "lmstudio"})
        assert not reply.is_error, reply.content
        # A genuine openai key claiming to be lmstudio, then a key the gateway never heard of.
        liar = FakeWorker(settings.worker_endpoint, name="lmstudio",
                          curve=load_curve_client(settings.curve_dir, "openai"))
        stranger = FakeWorker(settings.worker_endpoint, name="lmstudio", curve=load_curve_client(stray, "stray"))
        for impostor in (liar, stranger):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(impostor.hello(), 1.0)
            impostor.close()

    run(scenario())
    _wait_for(lambda: {e["reason"] for e in _events(gateway_log, "link_auth_failed")}
              >= {"identity_mismatch", "unknown_curve_key"})
    mismatch = next(e for e in _events(gateway_log, "link_auth_failed") if e["reason"] == "identity_mismatch")
    assert (mismatch["worker"], mismatch["authenticated_as"]) == ("lmstudio", "openai")

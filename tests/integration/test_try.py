"""`llm-caller try` and a quiet start: run as an operator would, in a process of its own.

`try` must print settings a client can paste and use at once; Ctrl-C must leave no process
and no file behind. `run` and `try` must not print supervisord's CRIT/WARN lines on a
normal start.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import free_port, mcp_client
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

# supervisord's own warnings; "running as root" is true of this test machine, not of an operator's start.
_NOISE = re.compile(r"\b(CRIT|WARN)\b")
_ROOT_NOTE = "Supervisor is running as root"


class Lines:
    """A child's stdout read line by line on a thread, so reads can time out."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(child,), daemon=True).start()

    def _pump(self, child: subprocess.Popen[str]) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, predicate: Any, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while not any(predicate(line) for line in self.seen):
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("timed out; output so far:\n" + "\n".join(self.seen)) from None
            if line is None:
                raise AssertionError("the process ended; output:\n" + "\n".join(self.seen))
            self.seen.append(line)
        return self.seen

    def rest(self, timeout_s: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return self.seen


def _spawn(*args: str) -> subprocess.Popen[str]:
    """The command in a session of its own, standing in for a terminal (Ctrl-C signals the whole group)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMC_", "OPENAI_", "ANTHROPIC_"))}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _json_blocks(lines: list[str]) -> list[Any]:
    """Every JSON object printed from a line "{" to its line "}"."""
    blocks, start = [], None
    for number, line in enumerate(lines):
        if line == "{":
            start = number
        elif line == "}" and start is not None:
            blocks.append(json.loads("\n".join(lines[start:number + 1])))
            start = None
    return blocks


def _value(lines: list[str], label: str) -> str:
    return next(line.split(": ", 1)[1].split()[0] for line in lines if line.startswith(label + ": "))


def _noise(lines: list[str]) -> list[str]:
    return [line for line in lines if _NOISE.search(line) and _ROOT_NOTE not in line]


def _processes_mentioning(folder: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + " ".join(f"{k}={v}" for k, v in proc.environ().items())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if folder in text and proc.pid != os.getpid():
            found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
    return found


async def _chat(url: str, token: str) -> dict[str, Any]:
    async with mcp_client(url, token) as client:
        result = await client.call_tool("chat", {"prompt": "What is 2+2?"})
        assert not result.is_error, result.content
        reply: dict[str, Any] = result.structured_content or {}
        return reply


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_try_prints_working_setups_and_a_stop_leaves_nothing(how: str) -> None:
    port = free_port()
    child = _spawn("try", "--port", str(port))
    reader = Lines(child)
    try:
        lines = reader.until(lambda line: line.startswith("Ctrl-C stops everything"), 90)
        url, token, folder = _value(lines, "endpoint"), _value(lines, "token"), _value(lines, "temp folder")
        assert url == f"http://127.0.0.1:{port}/mcp"
        assert Path(folder).is_dir() and _processes_mentioning(folder)

        claude = next(line for line in lines if line.startswith("claude mcp add"))
        assert claude == f'claude mcp add --transport http llm-caller {url} --header "Authorization: Bearer {token}"'
        http_setup, stdio_setup = _json_blocks(lines)
        assert http_setup["mcpServers"]["llm-caller"] == {
            "type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}}
        stdio = stdio_setup["mcpServers"]["llm-caller"]
        assert stdio["args"][-1] == "stdio" and Path(stdio["command"]).exists()
        assert stdio["env"] == {"LLMC_TOKEN": token, "LLMC_GATEWAY_URL": f"http://127.0.0.1:{port}"}

        reply = run(_chat(url, token))
        assert "2+2" in reply["text"]  # the emulator echoes the prompt

        started = time.perf_counter()
        if how == "ctrl-c":
            os.killpg(child.pid, signal.SIGINT)  # as a terminal does: the launcher and its emulators
        else:
            child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0
        print(f"\n{how}: `try` exited after {time.perf_counter() - started:.2f}s")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert not _noise(reader.rest()), _noise(reader.seen)
    assert not Path(folder).exists()
    assert _processes_mentioning(folder) == []


def _quiet_config(root: Path) -> Path:
    """A config folder as `init` writes one: one LM Studio provider (no key needed), one client."""
    config = root / "config"
    config.mkdir()
    write_json_atomic(config / "providers.json", {
        "providers": {"lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:9", "discover_models": False,
                                   "models": [{"id": "local-model", "capabilities": ["chat"]}]}},
        "defaults": {"chat": {"provider": "lmstudio", "model": "local-model"}},
    })
    write_json_atomic(config / "client-registry.json",
                      {"clients": {"quiet": {"token_sha256": hash_token(new_token()), "created_at": int(time.time())}}},
                      mode=0o600)
    return config


def test_run_prints_no_supervisord_crit_or_warn_on_a_normal_start() -> None:
    with tempfile.TemporaryDirectory(prefix="llmc-q-", dir="/tmp") as scratch:
        root = Path(scratch)
        config = _quiet_config(root)
        child = _spawn("run", "--config-dir", str(config), "--run-dir", str(root / "run"), "--port", str(free_port()))
        try:
            lines = Lines(child).until(lambda line: "success: worker-lmstudio entered RUNNING" in line, 60)
            os.killpg(child.pid, signal.SIGINT)
            assert child.wait(60) == 0
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
        print("\n".join(lines))
        assert any("spawned: 'gateway'" in line for line in lines)  # supervisord's console output is shown
        assert not _noise(lines), _noise(lines)
        log = (root / "run" / "logs" / "supervisord.log").read_text()
        assert "running without any HTTP authentication checking" in log  # kept where operators look for it

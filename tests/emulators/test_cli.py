"""``python -m emulators`` as a real process: ports file, omitted providers, signals, loopback only."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.registry import EMULATORS

ROOT = Path(__file__).resolve().parents[2]


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if proc.poll() is not None:
            raise AssertionError(f"emulators exited early: {proc.stderr.read() if proc.stderr else ''!r}")
        time.sleep(0.02)  # poll interval: waiting for the ports file
    raise AssertionError("no ports file")


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int]]]:
    ports_file = tmp_path / "ports.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators", "--host", "127.0.0.1", "--port", "openai=0", "--port", "lmstudio=0",
         "--ports-file", str(ports_file), "--key", "openai=sk-cli-test", "--chunk-delay-s", "0.02"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        yield proc, wait_for_file(ports_file, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)


def test_ports_file_signals_and_pacing(cli: tuple[subprocess.Popen[bytes], dict[str, int]]) -> None:
    proc, ports = cli
    assert set(ports) == {"openai", "lmstudio"}  # anthropic was not asked for
    assert all(isinstance(p, int) and p > 0 for p in ports.values())
    with httpx.Client(trust_env=False, timeout=5) as http:
        health = http.get(f"http://127.0.0.1:{ports['openai']}/_emulator/health").json()
        assert health == {"ok": True, "provider": "openai"}
        body = {"model": "qwen2.5-7b-instruct", "stream": True, "messages": [{"role": "user", "content": "a b"}]}
        started = time.monotonic()
        with http.stream("POST", f"http://127.0.0.1:{ports['lmstudio']}/v1/chat/completions", json=body) as r:
            lines = [line for line in r.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        assert time.monotonic() - started >= 10 * 0.02 * 0.9  # 11 deltas, 10 pauses between them
        # A silent stream in flight must not hold up shutdown.
        http.post(f"http://127.0.0.1:{ports['openai']}/_emulator/faults", json={"faults": [{"mode": "silent_stream"}]})
        chat = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        with http.stream("POST", f"http://127.0.0.1:{ports['openai']}/v1/chat/completions", json=chat,
                         headers={"authorization": "Bearer sk-cli-test"}) as silent:
            assert silent.status_code == 200
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert proc.wait(5) == 0
    assert time.monotonic() - started < 2.0
    assert proc.stderr is not None and proc.stderr.read() == b""


def test_refuses_non_loopback_host(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulators", "--host", "0.0.0.0", "--port", "openai=0",
         "--ports-file", str(tmp_path / "p.json")],
        cwd=ROOT, capture_output=True, timeout=20,
    )
    assert result.returncode == 2
    assert b"non-loopback" in result.stderr
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(("argv", "says"), [
    (["--port", "nosuch=0"], b"unknown provider 'nosuch'"),
    (["--port", "openai"], b"expected KIND=VALUE"),
    (["--port", "openai=x"], b"port must be a number"),
    (["--port", "lmstudio=0", "--key", "lmstudio=sk-x"], b"takes no API key"),
    ([], b"nothing to serve"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, argv: list[str], says: bytes) -> None:
    result = subprocess.run([sys.executable, "-m", "emulators", *argv, "--ports-file", str(tmp_path / "p.json")],
                            cwd=ROOT, capture_output=True, timeout=20)
    assert result.returncode == 2
    assert says in result.stderr and b"Traceback" not in result.stderr
    assert not (tmp_path / "p.json").exists()


def test_all_serves_every_registered_emulator(tmp_path: Path) -> None:
    ports_file = tmp_path / "ports.json"
    proc = subprocess.Popen([sys.executable, "-m", "emulators", "--all", "--ports-file", str(ports_file)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert set(wait_for_file(ports_file, proc)) == set(EMULATORS)
    finally:
        proc.terminate()
        proc.wait(5)

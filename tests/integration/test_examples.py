"""The client examples in examples/ run as written against the real stack.

Each is started as its own process with only LLMC_URL and LLMC_TOKEN set, as a user would
run it after copying it from the README.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sandbox import Sandbox, free_port

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(box: Sandbox, name: str, *args: str, token: str | None = None,
         url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_")}
    env.update(LLMC_URL=url or box.url, LLMC_TOKEN=box.token if token is None else token)
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, cwd=EXAMPLES,
                          capture_output=True, text=True, timeout=60)


def test_chat_example_prints_the_answer(box: Sandbox) -> None:
    done = _run(box, "chat.py", "What is 2+2?")
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    assert "What is 2+2?" in done.stdout  # the emulators echo the prompt
    assert "openai/gpt-4o-mini" in done.stderr


def test_chat_stream_example_prints_every_delta(box: Sandbox) -> None:
    done = _run(box, "chat_stream.py", "Tell me a story")
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stderr
    text, footer = done.stdout.rstrip("\n"), done.stderr
    assert "Tell me a story" in text
    deltas = int(footer.split(" deltas")[0].rsplit(" ", 1)[-1])
    assert deltas >= 2


def test_embed_example_prints_one_line_per_text(box: Sandbox) -> None:
    done = _run(box, "embed.py", "first", "second")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["'first'", "'second'"]
    assert "dimensions" in lines[0]


def test_errors_example_reports_a_tool_error_by_type(box: Sandbox) -> None:
    done = _run(box, "errors.py", "no-such-model")
    print(done.stderr)
    assert done.returncode == 1
    assert "not_found" in done.stderr and "available:" in done.stderr
    assert "Traceback" not in done.stderr


def test_errors_example_shows_the_gateways_reason_for_a_wrong_token(box: Sandbox) -> None:
    done = _run(box, "errors.py", token="llmc_" + "x" * 43)
    print(done.stderr)
    assert done.returncode == 2
    assert done.stderr.startswith("refused by the gateway: ")
    assert "llm-caller clients add" in done.stderr  # the gateway's own reason, not the SDK's stand-in
    assert "Traceback" not in done.stderr


def test_errors_example_says_when_no_gateway_answers(box: Sandbox) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    done = _run(box, "errors.py", url=url)
    assert done.returncode == 3
    assert f"no gateway answers at {url}" in done.stderr

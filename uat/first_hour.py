"""The operator's first hour, scripted: fresh clone -> make demo -> llm-caller try -> your own clients.

Run from a checkout with its virtualenv and Node tools installed (`make venv node-tools`):

    .venv/bin/python uat/first_hour.py

Steps, each timed:

1. `git clone` this checkout's HEAD into a temp folder; the clone reuses this checkout's
   ``.venv`` and ``uat/node_modules`` by symlink (both are git-ignored).
2. `make demo` in the clone (``-o .venv/.installed-stamp``: the shared virtualenv is used
   as it is, never reinstalled to point at the temporary clone).
3. `llm-caller try` in the background; its printed endpoint, token and client setups are parsed.
4. The official MCP Python SDK client calls `chat` with them (the goal: under 3 minutes
   from `make demo` finishing to this first call).
5. The MCP Inspector CLI calls `chat` with the printed ``mcpServers`` JSON, saved as it is.
6. Every example in examples/ runs with LLMC_URL / LLMC_TOKEN.
7. The worker `try` names is restarted as PROVIDER, `workers:PROVIDER` (llm-caller restart) and
   `worker-PROVIDER` (supervisorctl -c supervisord.conf, as the runbook shows); a call follows each.
8. Ctrl-C (SIGINT) stops `try`; its temp folder must be gone and `git status --porcelain`
   in the clone must be empty.

Exit code 0 when every step worked; the timings are printed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from shared.tool_names import CHAT

CHECKOUT = Path(__file__).resolve().parent.parent
GOAL_S = 180.0
_READY_LINE = "Ctrl-C stops everything"


class StepFailed(Exception):
    """A step of the walk-through did not do what the README says."""


class Timings:
    """Wall-clock time of each step, printed as they finish and as a table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"--- {name}", flush=True)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.rows.append((name, time.perf_counter() - started))
            print(f"    {self.rows[-1][1]:.1f}s", flush=True)

    def report(self) -> None:
        print("\nTimings:")
        for name, seconds in self.rows:
            print(f"  {seconds:7.1f}s  {name}")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,),
         timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL, check=False)
    if done.returncode not in ok:
        raise StepFailed(f"`{' '.join(command)}` exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def _user_env(**extra: str) -> dict[str, str]:
    """The walker's shell: no LLMC_* or provider key left over from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMC_", "OPENAI_", "ANTHROPIC_"))}
    env.update(extra)
    return env


def fresh_clone(scratch: Path) -> Path:
    clone = scratch / "clone"
    _run(["git", "clone", "--quiet", str(CHECKOUT), str(clone)], cwd=scratch)
    (clone / ".venv").symlink_to((CHECKOUT / ".venv").resolve())
    (clone / "uat" / "node_modules").symlink_to((CHECKOUT / "uat" / "node_modules").resolve())
    return clone


class TryProcess:
    """`llm-caller try` in the background, its stdout parsed into the settings it prints."""

    def __init__(self, clone: Path) -> None:
        self.process = subprocess.Popen([str(clone / ".venv/bin/python"), "-m", "cli.main", "try"], cwd=clone,
                                        env=_user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []

    def wait_for_settings(self, timeout_s: float = 120) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        for line in self.process.stdout:  # `try` prints the ready line within its start-up time
            self.lines.append(line.rstrip("\n"))
            if line.startswith(_READY_LINE):
                return parse_settings(self.lines)
            if time.monotonic() > deadline:
                break
        raise StepFailed("`llm-caller try` printed no settings:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise StepFailed("`llm-caller try` did not stop within 60s of Ctrl-C") from None
        assert self.process.stdout is not None
        self.lines += [line.rstrip("\n") for line in self.process.stdout]
        return code


def parse_settings(lines: list[str]) -> dict[str, Any]:
    """endpoint, token, temp folder, the claude line, the two JSON setups and the operate lines."""
    def value(label: str) -> str:
        return next(line.split(": ", 1)[1].split()[0] for line in lines if line.startswith(label + ": "))

    blocks, start = [], None
    for number, line in enumerate(lines):
        if line == "{":
            start = number
        elif line == "}" and start is not None:
            blocks.append(json.loads("\n".join(lines[start:number + 1])))
            start = None
    restart = next(line for line in lines if line.startswith("llm-caller restart "))
    return {"url": value("endpoint"), "token": value("token"), "folder": Path(value("temp folder")),
            "claude": next(line for line in lines if line.startswith("claude mcp add")),
            "http": blocks[0], "stdio": blocks[1],
            # `llm-caller restart PROVIDER --run-dir ...`: the provider `try` names, and where its stack is.
            "provider": restart.split()[2], "location": restart.split()[3:]}


async def sdk_chat(url: str, token: str, prompt: str) -> str:
    """One `chat` call with the official SDK client, as examples/chat.py does."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(CHAT, {"prompt": prompt})
    if result.is_error:
        raise StepFailed(f"chat failed: {result.structured_content}")
    text: str = (result.structured_content or {})["text"]
    return text


def inspector_chat(clone: Path, settings: dict[str, Any], scratch: Path) -> str:
    """The MCP Inspector CLI, configured with the printed mcpServers JSON saved as a file."""
    sys.path.insert(0, str(clone))
    from uat.node_tools import missing_reason, tool_environment, tool_path

    why = missing_reason()
    if why:
        raise StepFailed(why)
    config = scratch / "mcp.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(settings["http"], handle)
    env = tool_environment(_user_env(HOME=str(scratch), MCP_INSPECTOR_SECRET_STORE="memory"))  # noqa: S106 (a store kind)
    (server,) = settings["http"]["mcpServers"]
    done = _run([str(tool_path("inspector")), "--cli", "--config", str(config), "--server", server,
                 "--stored-auth-only", "--format", "json", "--method", "tools/call", "--tool-name", CHAT,
                 "--tool-arg", "prompt=Hello from the Inspector"], cwd=scratch, env=env, timeout_s=120)
    if "Hello from the Inspector" not in done.stdout:
        raise StepFailed(f"the Inspector's answer lacks the echoed prompt: {done.stdout[-1000:]}")
    return done.stdout.strip().splitlines()[-1][:120]


def run_examples(clone: Path, settings: dict[str, Any]) -> None:
    env = _user_env(LLMC_URL=settings["url"], LLMC_TOKEN=settings["token"])
    python = str(clone / ".venv/bin/python")
    for name, args, ok in (("chat.py", ["What is 2+2?"], (0,)), ("chat_stream.py", ["Tell me a story"], (0,)),
                           ("embed.py", ["first", "second"], (0,)), ("errors.py", ["no-such-model"], (1,))):
        done = _run([python, name, *args], cwd=clone / "examples", env=env, ok=ok, timeout_s=60)
        print(f"    {name}: exit {done.returncode}; {(done.stdout + done.stderr).strip().splitlines()[-1][:100]}")


def restart_by_every_name(clone: Path, settings: dict[str, Any]) -> None:
    python = str(clone / ".venv/bin/python")
    provider = settings["provider"]
    for name in (provider, f"workers:{provider}"):
        done = _run([python, "-m", "cli.main", "restart", name, *settings["location"]], cwd=clone, env=_user_env())
        print(f"    llm-caller restart {name}: {done.stdout.strip()}")
        asyncio.run(sdk_chat(settings["url"], settings["token"], "Are you back?"))
    run_dir = settings["location"][settings["location"].index("--run-dir") + 1]
    program = f"worker-{provider}"
    done = _run([python, "-m", "supervisor.supervisorctl", "-c", "supervisord.conf", "restart", program],
                cwd=clone, env=_user_env(LLMC_RUN_DIR=run_dir))
    print(f"    supervisorctl -c supervisord.conf restart {program}: {' / '.join(done.stdout.split(chr(10)))}")
    asyncio.run(sdk_chat(settings["url"], settings["token"], "Are you back?"))


def walk(scratch: Path, timings: Timings) -> float:
    """Every step; returns the seconds from `make demo` finishing to the SDK client's first answer."""
    with timings.step("git clone (fresh checkout, shared .venv and uat/node_modules by symlink)"):
        clone = fresh_clone(scratch)
    with timings.step("make demo"):
        _run(["make", "-o", ".venv/.installed-stamp", "demo"], cwd=clone, env=_user_env(), timeout_s=600)
    demo_done = time.perf_counter()
    trying = TryProcess(clone)
    try:
        with timings.step("llm-caller try: until the settings are printed"):
            settings = trying.wait_for_settings()
            print(f"    endpoint {settings['url']}; {settings['claude'][:60]}...")
        with timings.step("official Python SDK client: first chat"):
            print(f"    {asyncio.run(sdk_chat(settings['url'], settings['token'], 'What is 2+2?'))!r}")
        to_first_call = time.perf_counter() - demo_done
        with timings.step("MCP Inspector CLI: chat with the printed mcpServers JSON"):
            print(f"    {inspector_chat(clone, settings, scratch)}")
        with timings.step("examples/ with LLMC_URL and LLMC_TOKEN"):
            run_examples(clone, settings)
        with timings.step(f"restart the {settings['provider']} worker by every name"):
            restart_by_every_name(clone, settings)
    finally:
        with timings.step("Ctrl-C"):
            code = trying.stop()
    if code != 0 or settings["folder"].exists():
        raise StepFailed(f"`try` exited {code}; temp folder left: {settings['folder'].exists()}")
    status = _run(["git", "status", "--porcelain"], cwd=clone).stdout
    if status.strip():
        raise StepFailed(f"the clone is not clean after the walk-through:\n{status}")
    print("--- git status --porcelain: clean")
    return to_first_call


def main() -> int:
    timings = Timings()
    scratch = Path(tempfile.mkdtemp(prefix="llmc-first-hour-", dir="/tmp"))
    try:
        to_first_call = walk(scratch, timings)
    except (StepFailed, subprocess.TimeoutExpired, OSError) as exc:
        timings.report()
        print(f"\nfirst hour FAILED: {exc}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    timings.report()
    verdict = "within" if to_first_call < GOAL_S else "OVER"
    print(f"\n`make demo` finished -> first call from your own client: {to_first_call:.1f}s "
          f"({verdict} the {GOAL_S:.0f}s goal)")
    return 0 if to_first_call < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())

"""``llm-caller try``: the real stack against the bundled emulators, for connecting your own client.

No provider keys needed: ``harness.sandbox.Sandbox`` (the same stack ``make demo`` and the
tests run) starts the emulators, writes a config pointing at them, registers a throwaway
client and starts supervisord with the gateway and workers. This command prints the
endpoint, the token and ready-to-paste client setups, then waits. Ctrl-C, SIGTERM or a
closed terminal (SIGHUP) stops every process it started and removes its temp folder,
key files included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from cli.stack import StackError
from harness.sandbox import Sandbox

__all__ = ["client_setups", "register"]

SERVER_NAME = "llm-caller"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(BaseException):
    """Raised in the main thread by the first Ctrl-C / SIGTERM / SIGHUP."""


def _stdio_command() -> tuple[str, list[str]]:
    """How an MCP client launches ``llm-caller stdio`` from this installation."""
    script = Path(sys.executable).parent / "llm-caller"
    if script.exists():
        return str(script), ["stdio"]
    found = shutil.which("llm-caller")
    if found:
        return found, ["stdio"]
    return sys.executable, ["-m", "cli.main", "stdio"]


def client_setups(url: str, token: str, gateway_url: str) -> dict[str, Any]:
    """The three ways to connect a client: Claude Code's command, HTTP mcpServers JSON, STDIO JSON."""
    bearer = f"Authorization: Bearer {token}"
    command, args = _stdio_command()
    return {
        "claude": f'claude mcp add --transport http {SERVER_NAME} {url} --header "{bearer}"',
        "http": {"mcpServers": {SERVER_NAME: {"type": "http", "url": url,
                                              "headers": {"Authorization": f"Bearer {token}"}}}},
        "stdio": {"mcpServers": {SERVER_NAME: {"command": command, "args": args,
                                               "env": {"LLMC_TOKEN": token, "LLMC_GATEWAY_URL": gateway_url}}}},
    }


def _print_setups(box: Sandbox, seconds: float) -> None:
    port = box.stack.settings.port
    setups = client_setups(box.url, box.token, f"http://127.0.0.1:{port}")
    run_dir = box.stack.settings.run_dir
    lines = [
        f"llm-caller try: stack up in {seconds:.1f}s against the bundled provider emulators (no keys needed)",
        f"temp folder: {box.root}  (config, keys, logs; removed when this stops)",
        "",
        f"endpoint: {box.url}",
        f"token: {box.token}",
        "",
        "Claude Code:",
        setups["claude"],
        "",
        "Editors and clients that take mcpServers (Streamable HTTP):",
        json.dumps(setups["http"], indent=2),
        "",
        "Clients that launch a STDIO server (the gateway must be running):",
        json.dumps(setups["stdio"], indent=2),
        "",
        "The examples (in a checkout's examples/ folder; see the README):",
        f"LLMC_URL={box.url} LLMC_TOKEN={box.token} python examples/chat.py 'What is 2+2?'",
        "",
        "Operate it from another terminal:",
        f"llm-caller status --run-dir {run_dir}",
        f"llm-caller restart {next(iter(box.providers.providers))} --run-dir {run_dir}",
        "",
        "Ctrl-C stops everything and removes the temp folder.",
    ]
    print("\n".join(lines), flush=True)


def _on_signal(signum: int, _frame: object) -> None:
    # Only the first signal interrupts; later ones must not cut the clean-up short.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _StopRequested(signum)


def _serve(port: int | None) -> int:
    started = time.perf_counter()
    with Sandbox(port=port, client_name="try") as box:
        box.wait_workers_up()
        _print_setups(box, time.perf_counter() - started)
        while box.stack.is_running():
            time.sleep(1.0)
        print(f"llm-caller try: supervisord stopped on its own; see {box.log_dir}/supervisord.log "
              "(kept only with LLMC_KEEP_SANDBOX=1)", file=sys.stderr)
        return 1


def _try(args: argparse.Namespace) -> int:
    previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    try:
        return _serve(args.port)
    except _StopRequested:
        kept = " kept (LLMC_KEEP_SANDBOX=1)" if os.environ.get("LLMC_KEEP_SANDBOX") == "1" else " removed"
        print(f"llm-caller try: stopped; every process it started has ended and its temp folder was{kept}",
              flush=True)
        return 0
    except (StackError, RuntimeError, TimeoutError) as exc:
        print(f"llm-caller try: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _port(text: str) -> int:
    """argparse type: a TCP port number a gateway can listen on."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "try", help="run the stack against bundled emulators (no keys) and print how to connect your own client",
        description="Run supervisord, the gateway and one worker per provider in the foreground against the "
                    "bundled provider emulators, register a throwaway client, and print the endpoint, its token "
                    "and ready-to-paste client setups. Ctrl-C stops everything and removes what it made.",
    )
    parser.add_argument("--port", type=_port, help="gateway port on 127.0.0.1 (default: a free port)")
    parser.set_defaults(handler=_try)

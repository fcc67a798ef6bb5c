"""``llm-caller up | run | down | status | restart | demo``: operating the process tree."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from cli.config_warnings import report_for_start, unconfigured_reasons
from cli.stack import Stack, StackError
from cli.status_view import fetch_metrics, read_refusals, render_status
from shared.settings import Settings

__all__ = ["register"]


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", type=Path,
                        help="folder with providers.json and client-registry.json (default: ./config)")
    parser.add_argument("--run-dir", type=Path, help="folder for sockets and hand-off files (default: ./run)")
    parser.add_argument("--log-dir", type=Path, help="folder for log files (default: RUN_DIR/logs)")
    parser.add_argument("--port", type=int, help="gateway port on 127.0.0.1 (default: 8765)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if args.config_dir:
        changes["config_dir"] = args.config_dir.absolute()
    if args.run_dir:
        changes["run_dir"] = args.run_dir.absolute()
        if not args.log_dir:
            changes["log_dir"] = args.run_dir.absolute() / "logs"
    if args.log_dir:
        changes["log_dir"] = args.log_dir.absolute()
    if args.port:
        changes["port"] = args.port
    if getattr(args, "allow_non_loopback", False):  # only `up` and `run` have the flag
        changes["security"] = dataclasses.replace(settings.security, allow_non_loopback=True)
    return dataclasses.replace(settings, **changes)


def _up(args: argparse.Namespace) -> int:
    stack = Stack(settings_from_args(args))
    if not report_for_start(stack.settings, strict=args.strict):
        return 1
    try:
        if not args.detach:
            print(f"llm-caller: starting in the foreground; MCP endpoint http://127.0.0.1:{stack.settings.port}/mcp")
            code = stack.start(foreground=True)  # until Ctrl-C or SIGTERM; the key files are gone after
            print(f"llm-caller: stopped (supervisord exit code {code}); key hand-off files removed")
            return 0 if code in (0, -2, -15) else 1
        stack.start()
        stack.wait_ready()
    except StackError as exc:
        print(f"llm-caller: {exc}", file=sys.stderr)
        return 1
    print(f"llm-caller: up; MCP endpoint http://127.0.0.1:{stack.settings.port}/mcp; logs in {stack.settings.log_dir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = Stack(settings_from_args(args))
    running = stack.supervisord_pid() is not None
    orphans = stack.stop()  # also when supervisord is gone: its leftover processes and key files
    if orphans:
        before = "stopped; and" if running else "supervisord was not running;"
        print(f"llm-caller: {before} stopped {orphans} leftover process(es) of "
              f"{stack.settings.run_dir}; key hand-off files removed")
    elif running:
        print("llm-caller: stopped; key hand-off files removed")
    else:
        print("llm-caller: not running; no leftover process; key hand-off files removed")
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = Stack(settings_from_args(args))
    if not stack.is_running():
        print("llm-caller: not running")
        return 3
    metrics = fetch_metrics(stack.settings.host, stack.settings.port)
    processes = stack.processes()
    print("\n".join(render_status(processes, metrics, read_refusals(stack.settings.run_dir, processes),
                                   reasons=unconfigured_reasons(stack.settings))))
    return 0


def _restart(args: argparse.Namespace) -> int:
    stack = Stack(settings_from_args(args))
    try:
        name = stack.restart_worker(args.worker)
    except (StackError, OSError) as exc:
        print(f"llm-caller: {exc}", file=sys.stderr)
        return 1
    print(f"llm-caller: restarted {name}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo()


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="start the gateway and workers under supervisord")
    _add_location_options(up)
    up.add_argument("--detach", action="store_true", help="start in the background and return once ready")
    up.set_defaults(handler=_up)

    run = sub.add_parser("run", help="same as `up` in the foreground")
    _add_location_options(run)
    run.set_defaults(handler=_up, detach=False)

    for parser in (up, run):
        parser.add_argument("--allow-non-loopback", action="store_true",
                            help="let the gateway bind a non-loopback LLMC_HOST (logged as a warning; "
                                 "same as LLMC_ALLOW_NON_LOOPBACK=1)")
        parser.add_argument("--strict", action="store_true",
                            help="do not start when `config check` would warn (e.g. a provider's key is not set)")

    for name, handler, text in (
        ("down", _down, "stop everything"),
        ("status", _status, "show each process's state"),
    ):
        parser = sub.add_parser(name, help=text)
        _add_location_options(parser)
        parser.set_defaults(handler=handler)

    restart = sub.add_parser("restart", help="restart one worker (e.g. openai) or the gateway")
    _add_location_options(restart)
    restart.add_argument("worker")
    restart.set_defaults(handler=_restart)

    demo = sub.add_parser("demo", help="run the whole stack against bundled emulators and call every tool")
    demo.set_defaults(handler=_demo)

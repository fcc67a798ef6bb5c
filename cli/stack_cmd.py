"""``llm-caller up | run | down | status | restart | demo``: operating the process tree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.config_warnings import report_for_start, unconfigured_reasons
from cli.options import add_run_dir, reporting, resolve_settings
from cli.stack import Stack, StackError
from cli.status_view import fetch_metrics, read_refusals, render_status

__all__ = ["register"]


def _add_location_options(parser: argparse.ArgumentParser, *, starts: bool) -> None:
    """Where the stack reads config, keeps run state and logs, and its port.

    ``up``/``run`` choose them; the other commands find them in the running stack's record
    (RUN_DIR/stack.json), so there they only override.
    """
    found = "the running stack's, else " if not starts else ""
    parser.add_argument("--config-dir", type=Path, metavar="DIR",
                        help="folder with providers.json and client-registry.json "
                             f"(default: $LLMC_CONFIG_DIR, else {found}$XDG_CONFIG_HOME/llm-caller)")
    add_run_dir(parser, "folder for sockets, the pid file, hand-off files and the stack's record")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help=f"folder for log files (default: $LLMC_LOG_DIR, else {found}RUN_DIR/logs when the run "
                             "folder is named, else $XDG_STATE_HOME/llm-caller/logs)")
    parser.add_argument("--port", type=int, metavar="N",
                        help=f"gateway port on 127.0.0.1 (default: $LLMC_PORT, else {found}8765)")


def _not_running(stack: Stack) -> str:
    """The "not running" line, naming the run folder that was checked and how to point elsewhere."""
    return (f"llm-caller: not running (no stack answers in {stack.settings.run_dir}); "
            "a stack started elsewhere is found with --run-dir DIR or LLMC_RUN_DIR")


@reporting
def _up(args: argparse.Namespace) -> int:
    stack = Stack(resolve_settings(args, remembered=False))
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
    where = stack.settings
    print(f"llm-caller: up; MCP endpoint http://127.0.0.1:{where.port}/mcp; config {where.config_dir}; "
          f"run folder {where.run_dir}; logs in {where.log_dir}")
    return 0


@reporting
def _down(args: argparse.Namespace) -> int:
    stack = Stack(resolve_settings(args))
    running = stack.supervisord_pid() is not None
    orphans = stack.stop()  # also when supervisord is gone: its leftover processes and key files
    if orphans:
        before = "stopped; and" if running else "supervisord was not running;"
        print(f"llm-caller: {before} stopped {orphans} leftover process(es) of "
              f"{stack.settings.run_dir}; key hand-off files removed")
    elif running:
        print(f"llm-caller: stopped the stack of {stack.settings.run_dir}; key hand-off files removed")
    else:
        print(f"{_not_running(stack)}; no leftover process; key hand-off files removed")
    return 0


@reporting
def _status(args: argparse.Namespace) -> int:
    stack = Stack(resolve_settings(args))
    if not stack.is_running():
        print(_not_running(stack))
        return 3
    print(f"llm-caller: running from {stack.settings.run_dir}; MCP endpoint "
          f"http://{stack.settings.host}:{stack.settings.port}/mcp; config {stack.settings.config_dir}; "
          f"logs {stack.settings.log_dir}")
    metrics = fetch_metrics(stack.settings.host, stack.settings.port)
    processes = stack.processes()
    print("\n".join(render_status(processes, metrics, read_refusals(stack.settings.run_dir, processes),
                                   reasons=unconfigured_reasons(stack.settings))))
    return 0


@reporting
def _restart(args: argparse.Namespace) -> int:
    stack = Stack(resolve_settings(args))
    if not stack.is_running():
        print(_not_running(stack), file=sys.stderr)
        return 1
    try:
        name = stack.restart_worker(args.worker)
    except (StackError, OSError) as exc:
        print(f"llm-caller: {exc}", file=sys.stderr)
        return 1
    print(f"llm-caller: restarted {name}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return run_demo()


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="start the gateway and workers under supervisord")
    _add_location_options(up, starts=True)
    up.add_argument("--detach", action="store_true", help="start in the background and return once ready")
    up.set_defaults(handler=_up)

    run = sub.add_parser("run", help="same as `up` in the foreground")
    _add_location_options(run, starts=True)
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
        _add_location_options(parser, starts=False)
        parser.set_defaults(handler=handler)

    restart = sub.add_parser("restart", help="restart one worker (by its provider's name) or the gateway")
    _add_location_options(restart, starts=False)
    restart.add_argument("worker")
    restart.set_defaults(handler=_restart)

    demo = sub.add_parser("demo", help="run the whole stack against bundled emulators and call every tool")
    demo.set_defaults(handler=_demo)

#!/usr/bin/env python3
"""User acceptance run: every scenario through two independent MCP clients, plus conformance.

    python uat/run_uat.py --sandbox [--conformance] [--tasks]   # own emulated stack (what `make uat` runs)
    python uat/run_uat.py --url URL --token TOKEN          # a running stack on 127.0.0.1
    LLMC_UAT_URL=... LLMC_UAT_TOKEN=... python uat/run_uat.py

Clients: the official MCP Python SDK (``mcp.Client``), the official MCP Inspector CLI and
the official MCP TypeScript SDK (v1, ``uat/ts_sdk_client.mjs``). By default they speak
different protocol eras (Python SDK: negotiated, which is 2026-07-28 with this gateway;
Inspector and TypeScript SDK: the 2025-11-25 session era), so one run covers both. Prints a
scenario x client table and exits 1 if any cell fails, 2 if the run could not start.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from cli.stack import StackError
from uat.conformance import run_conformance
from uat.emulator_access import EmulatorAccess, sandbox_access
from uat.matrix import ClientChoice, run_matrix
from uat.node_tools import missing_reason
from uat.report import conformance_text, matrix_text
from uat.scenarios import SCENARIO_DIR, ScenarioError, load_scenarios
from uat.tasks_check import run_tasks_check

__all__ = ["main", "parse_args"]

_DESCRIPTION = "UAT: scenarios through three independent MCP clients, and the official conformance suite."


class UsageError(Exception):
    """The run cannot start as asked; the message says what to change."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_uat.py", description=_DESCRIPTION)
    target = parser.add_argument_group("target (one of)")
    target.add_argument("--sandbox", action="store_true", help="start an emulated stack for this run (harness.sandbox)")
    target.add_argument("--url", default=os.environ.get("LLMC_UAT_URL"), help="MCP endpoint (env LLMC_UAT_URL)")
    target.add_argument("--token", default=os.environ.get("LLMC_UAT_TOKEN"), help="client token (env LLMC_UAT_TOKEN)")
    parser.add_argument("--conformance", action="store_true", help="also run the official conformance scenarios")
    parser.add_argument("--tasks", action="store_true",
                        help="also drive MCP Tasks with the TypeScript SDK and ext-tasks (the stack needs a store)")
    parser.add_argument("--no-scenarios", action="store_true",
                        help="skip the scenarios (with --conformance or --tasks)")
    parser.add_argument("--sdk-only", action="store_true",
                        help="only the Python SDK client: a quick smoke test of a live stack without Node (not a UAT)")
    parser.add_argument("--scenario", action="append", metavar="NAME",
                        help="run only this scenario, or those a shell pattern matches ('feature-*'); repeatable")
    parser.add_argument("--scenario-dir", type=Path, default=SCENARIO_DIR, help="folder of scenario JSON files")
    parser.add_argument("--sdk-mode", default="auto", help="Python SDK protocol mode: auto, legacy or 2026-07-28")
    parser.add_argument("--inspector-era", default="legacy", choices=["legacy", "modern", "auto"],
                        help="Inspector protocol era")
    return parser.parse_args(argv)


def _check_target(args: argparse.Namespace) -> None:
    if args.sandbox:
        return
    if not args.url or not args.token:
        raise UsageError("give --sandbox, or --url and --token (or LLMC_UAT_URL and LLMC_UAT_TOKEN)")
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        raise UsageError(f"UAT only targets a gateway on this machine (127.0.0.1), not {args.url}")


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[tuple[str, str, EmulatorAccess]]:
    """The gateway's URL and token, and the emulators' control API when the run owns them."""
    if not args.sandbox:
        yield args.url, args.token, EmulatorAccess()
        return
    from harness.sandbox import Sandbox  # imported here: --url runs need no emulators

    started = time.perf_counter()
    # A small chunk delay makes streams arrive as several notifications, as real ones do.
    with Sandbox(chunk_delay_s=0.02) as box:
        box.wait_workers_up()
        print(f"sandbox stack up in {time.perf_counter() - started:.1f}s at {box.url}", flush=True)
        yield box.url, box.token, sandbox_access(box)


def _run(args: argparse.Namespace) -> int:
    _check_target(args)
    if args.sdk_only and (args.conformance or args.tasks):
        raise UsageError("--conformance and --tasks need the Node tools; drop --sdk-only")
    if args.no_scenarios and not (args.conformance or args.tasks):
        raise UsageError("--no-scenarios leaves nothing to run without --conformance or --tasks")
    scenarios = [] if args.no_scenarios else load_scenarios(args.scenario_dir, args.scenario)
    if not args.sdk_only and (reason := missing_reason()) is not None:
        raise UsageError(f"{reason} (the Inspector, the TypeScript SDK and the conformance suite need them)")
    choice = ClientChoice(sdk_mode=args.sdk_mode, inspector_era=args.inspector_era, use_inspector=not args.sdk_only,
                          use_ts_sdk=not args.sdk_only)
    failed = False
    with _target(args) as (url, token, emulators):
        if scenarios:
            rows = run_matrix(url, token, scenarios, choice, emulators)
            print(matrix_text(rows, choice.labels), flush=True)
            failed |= any(cell.failed for row in rows for cell in row.cells.values())
        if args.conformance:
            report = run_conformance(url, token)
            print(conformance_text(report), flush=True)
            failed |= not report.ok
        if args.tasks:
            tasks = run_tasks_check(url, token)
            print(tasks.text(), flush=True)
            failed |= not tasks.ok
    print(f"\nUAT {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _run(args)
    except (UsageError, ScenarioError, StackError) as exc:
        print(f"run_uat: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

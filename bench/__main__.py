"""``python -m bench`` (``make bench``): the side-by-side benchmark, plus ``soak`` and ``profile``.

    python -m bench                         # full run, about 5-10 minutes on 2 cores
    python -m bench --quick                 # about a minute
    python -m bench --tools chat,embed --concurrency 1,8,32 --calls 600 --mode legacy
    python -m bench soak --calls 10000      # faults injected, RSS growth checked (not in make bench)
    python -m bench profile                 # py-spy on the gateway under 32-client chat load
    python -m bench timeline                # one-client calls, hop by hop (shared/timeline.py)
    python -m bench memory                  # RSS, PSS and USS per process: idle, after calls, settled
    python -m bench instructions            # CPU instructions per call (callgrind), worker and gateway side

Results go to ``bench/results/`` (``latest.json``, ``latest.md``, ``latest.png``; ``soak-latest.*``;
``profile-latest.*``; ``timeline-latest.*``; ``memory-latest.*``; ``instructions-latest.*``, its
dumps in ``callgrind/``), and the markdown is printed to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.stack_names import WORKERS
from cli.stack import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results"
README = REPO_ROOT / "README.md"
TOOLS = ("chat", "chatStream", "embed")
MODES = ("2026-07-28", "legacy")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("client counts must be positive")
    return values


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (0 rounds would divide by zero)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _tools(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in TOOLS]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"unknown tool(s) {unknown}; choose from {', '.join(TOOLS)}")
    return values


_pos, _nonneg = _count(1), _count(0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="the side-by-side benchmark (the default)")
    run.add_argument("--quick", action="store_true", help="small counts and 2 rounds: about a minute")
    run.add_argument("--calls", type=_pos, default=None, help="calls per cell over all rounds (default: by clients)")
    run.add_argument("--concurrency", type=_ints, default=None, help="client counts, e.g. 1,8,32 (default 1,8,32,128)")
    run.add_argument("--tools", type=_tools, default=TOOLS, help="e.g. chat,embed (default: all three)")
    run.add_argument("--rounds", type=_pos, default=None, help="rounds to split each cell over (default 6, quick 2)")
    run.add_argument("--loadgen-procs", type=_pos, default=None, help="load-generator processes per cell (auto)")
    run.add_argument("--warmup-calls", type=_nonneg, default=None,
                     help="untimed calls per target and tool (60, quick 30)")
    run.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    soak = sub.add_parser("soak", help="many calls with injected faults; RSS growth per process")
    soak.add_argument("--calls", type=_pos, default=10_000)
    soak.add_argument("--clients", type=_pos, default=16)
    soak.add_argument("--fault-rate", type=float, default=0.10)
    soak.add_argument("--timeout-s", type=float, default=45.0, help="per call; one that passes is a hang")
    prof = sub.add_parser("profile", help="py-spy profile of the gateway under load")
    prof.add_argument("--clients", type=_pos, default=32)
    prof.add_argument("--seconds", type=_pos, default=12, help="sampling window (the emulator quota allows ~13 s)")
    prof.add_argument("--rate", type=_pos, default=250, help="samples per second")
    prof.add_argument("--tool", choices=TOOLS, default="chat")
    prof.add_argument("--process", choices=("gateway", *WORKERS), default="gateway")
    line = sub.add_parser("timeline", help="where a one-client call's time goes, hop by hop")
    line.add_argument("--calls", type=_pos, default=1200, help="per target, over all rounds")
    line.add_argument("--rounds", type=_pos, default=6)
    line.add_argument("--tool", choices=("chat", "embed"), default="chat")
    memory = sub.add_parser("memory", help="RSS, PSS and USS of each stack process: idle, after calls, settled")
    memory.add_argument("--calls", type=_pos, default=20, help="per tool and provider")
    instr = sub.add_parser("instructions", help="CPU instructions per call under callgrind (load-independent)")
    instr.add_argument("--calls", type=_pos, default=200, help="measured calls per op")
    instr.add_argument("--warmup", type=_nonneg, default=20, help="calls per op before counting")
    instr.add_argument("--process", choices=("both", "worker", "gateway"), default="both",
                       help="which process runs under callgrind")
    instr.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    for p in (run, soak, prof, line, memory):
        p.add_argument("--mode", choices=MODES, default="2026-07-28", help="MCP protocol era of the clients")
        p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    return parser


def _bench(args: argparse.Namespace) -> int:
    from bench.readme import update_readme
    from bench.report import machine_info, markdown, write_results
    from bench.runner import BenchConfig, run_bench
    from bench.verdicts import comparisons, targets

    concurrency = args.concurrency or ((1, 8, 32) if args.quick else (1, 8, 32, 128))
    cfg = BenchConfig(tools=args.tools, concurrency=concurrency, rounds=args.rounds or (2 if args.quick else 6),
                      mode=args.mode, calls=args.calls, quick=args.quick, loadgen_procs=args.loadgen_procs,
                      warmup_calls=args.warmup_calls if args.warmup_calls is not None else (30 if args.quick else 60))
    config: dict[str, Any] = {"tools": list(cfg.tools), "concurrency": list(cfg.concurrency), "rounds": cfg.rounds,
                              "mode": cfg.mode, "quick": cfg.quick, "calls_per_round":
                              {str(c): cfg.calls_per_round(c) for c in cfg.concurrency},
                              "loadgen_pool": cfg.pool_size}
    results: dict[str, Any] = {"machine": machine_info(), "config": config, **run_bench(cfg)}
    results["comparisons"] = comparisons(results["cells"])
    results["targets"] = targets(results["cells"], results["peak_rss_mb"], results["idle_rss_mb"])
    paths = write_results(results, args.out)
    if args.out.resolve() == RESULTS.resolve() and update_readme(README, results):
        paths["readme"] = README
    print(markdown(results))
    print("written: " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    failed = any(t["result"] == "FAIL" for t in results["targets"])
    return 1 if args.strict and failed else 0


def _soak(args: argparse.Namespace) -> int:
    from bench.report import machine_info, soak_markdown
    from bench.soak import SoakConfig, run_soak

    cfg = SoakConfig(calls=args.calls, clients=args.clients, fault_rate=args.fault_rate, timeout_s=args.timeout_s,
                     mode=args.mode, loadgen_procs=min(2, args.clients))
    summary = {"machine": machine_info(), **run_soak(cfg)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak-latest.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (args.out / "soak-latest.md").write_text(soak_markdown(summary))
    print(soak_markdown(summary))
    return 0 if all(summary["verdict"].values()) else 1


def _profile(args: argparse.Namespace) -> int:
    from bench.profile import ProfileConfig, profile_markdown, run_profile

    cfg = ProfileConfig(clients=args.clients, seconds=args.seconds, rate=args.rate, tool=args.tool, mode=args.mode,
                        process=args.process, loadgen_procs=min(2, args.clients))
    summary = run_profile(cfg, args.out)
    stem = "profile-latest" if cfg.process == "gateway" else f"profile-{cfg.process.replace(':', '-')}-latest"
    (args.out / f"{stem}.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (args.out / f"{stem}.md").write_text(profile_markdown(summary))
    print(profile_markdown(summary))
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from bench.timeline import TimelineConfig, run_timeline, timeline_markdown

    summary = run_timeline(TimelineConfig(calls=args.calls, rounds=args.rounds, tool=args.tool, mode=args.mode))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "timeline-latest.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (args.out / "timeline-latest.md").write_text(timeline_markdown(summary))
    print(timeline_markdown(summary))
    return 0


def _memory(args: argparse.Namespace) -> int:
    from bench.memory import MemoryConfig, memory_markdown, run_memory
    from bench.report import machine_info

    summary = {"machine": machine_info(), **run_memory(MemoryConfig(calls=args.calls, mode=args.mode))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory-latest.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (args.out / "memory-latest.md").write_text(memory_markdown(summary))
    print(memory_markdown(summary))
    return 0


def _instructions(args: argparse.Namespace) -> int:
    from bench.instructions import (
        PROCESSES,
        InstructionsConfig,
        instructions_markdown,
        run_instructions,
        write_instructions,
    )

    processes = PROCESSES if args.process == "both" else (args.process,)
    cfg = InstructionsConfig(calls=args.calls, warmup=args.warmup, processes=processes)
    summary = run_instructions(cfg, args.out)
    write_instructions(summary, args.out)
    print(instructions_markdown(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")  # `python -m bench --quick` means `python -m bench run --quick`
    args = _parser().parse_args(argv)
    handlers = {"run": _bench, "soak": _soak, "profile": _profile, "timeline": _timeline, "memory": _memory,
                "instructions": _instructions}
    return handlers[args.command](args)


# The guard matters: load-generator processes are spawned, and spawning re-imports this module.
if __name__ == "__main__":
    sys.exit(main())

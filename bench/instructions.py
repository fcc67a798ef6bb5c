"""``python -m bench instructions``: CPU instructions per call, counted by callgrind.

Wall-clock figures move with the machine's load; instruction counts do not. This runs
one provider worker (``python -m workers NAME``, the real process) against its emulator,
and a driver playing the gateway's broker and composition (``bench.instructions_driver``),
each under ``valgrind --tool=callgrind`` (``--process`` picks which). After a warm-up,
``callgrind_control`` zeroes the counters, the driver makes ``--calls`` sequential calls
of ``chat`` and then of ``chatStream``, and the counters are dumped after each: the
instructions of the whole process (every thread: the event loop, libzmq's I/O thread, the
log writer) between the two points, divided by the calls.

Heartbeats run every ``HEARTBEAT_S`` (not 0.5 s) so that their share stays small and
fixed; a few per window remain in the figure. Repeat runs agree to well under 1%.

The dumps are kept (``OUT/callgrind/<process>-<op>.out``) for
``callgrind_annotate --inclusive=yes FILE``: under CPython the C functions show where
the interpreter, orjson, hmac, libzmq, aiohttp's parser and malloc spend.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from bench.instructions_driver import OPS
from bench.stack_names import DEFAULT_PROVIDER
from cli.stack import CODE_ROOT
from harness.sandbox import PROVIDER_KEY_VARS, EmulatorProcess, emulator_providers
from shared.files import write_json_atomic
from shared.link_keys import ensure_link_key

__all__ = ["PROCESSES", "InstructionsConfig", "instructions_markdown", "run_instructions", "totals_of",
           "write_instructions"]

PROCESSES = ("worker", "gateway")
HEARTBEAT_S = 2.0
_LIVENESS = 30
_VALGRIND = ("valgrind", "--tool=callgrind", "--dump-instr=no", "--collect-jumps=no")


@dataclass(frozen=True)
class InstructionsConfig:
    calls: int = 200  # measured, per op
    warmup: int = 20  # per op, before the counters are zeroed
    provider: str = DEFAULT_PROVIDER
    processes: tuple[str, ...] = PROCESSES  # which run under callgrind


def totals_of(dump: Path) -> int:
    """The instruction total (``Ir``) a callgrind dump file states."""
    for line in dump.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals line in {dump}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (it comes with valgrind: apt-get install valgrind)")
    return found


class _Measured:
    """One process, started under callgrind or not; zeroes and dumps its counters on demand."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path, profiled: bool,
                 stdin: int | None = None, stdout: int | None = None) -> None:
        self.name, self.folder, self.profiled = name, folder, profiled
        self.out = folder / f"{name}.callgrind"
        prefix = [*_VALGRIND, f"--callgrind-out-file={self.out}"] if profiled else []
        log = (folder / f"{name}.log").open("ab")
        self.process = subprocess.Popen([*prefix, *command], cwd=CODE_ROOT, env=env, stdin=stdin,
                                        stdout=stdout if stdout is not None else log, stderr=log,
                                        text=stdin is not None)
        self.dumps = 0

    def control(self, action: str) -> None:
        if not self.profiled:
            return
        result = subprocess.run([_tool("callgrind_control"), action, str(self.process.pid)],
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0 or "OK" not in result.stdout:
            raise RuntimeError(f"callgrind_control {action} {self.name} failed: {result.stdout}{result.stderr}")
        if action == "-d":
            self.dumps += 1

    def last_dump(self) -> Path:
        return Path(f"{self.out}.{self.dumps}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _environment(root: Path, keys: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMC_")}
    env.update(LLMC_CONFIG_DIR=str(root / "config"), LLMC_RUN_DIR=str(root / "run"),
               LLMC_LOG_DIR=str(root / "logs"), LLMC_HEARTBEAT_S=str(HEARTBEAT_S), LLMC_LOG_LEVEL="INFO",
               # Under callgrind the worker's first request (it imports aiohttp then) holds its loop
               # for seconds: a stricter liveness would call it dead during the warm-up.
               LLMC_LIVENESS=str(_LIVENESS))
    env.update({PROVIDER_KEY_VARS[kind]: key for kind, key in keys.items()})
    return env


def _expect(stream: IO[str], expected: str, driver: _Measured) -> None:
    line = stream.readline().strip()
    if line != expected:
        raise RuntimeError(f"the driver said {line!r}, expected {expected!r}; see {driver.folder}/{driver.name}.log "
                           "(LLMC_KEEP_SANDBOX=1 keeps it)")


def _measure(cfg: InstructionsConfig, worker: _Measured, driver: _Measured) -> dict[str, dict[str, int]]:
    """Run the handshake with the driver; the instruction totals per process and op."""
    stdin, stdout = driver.process.stdin, driver.process.stdout
    assert stdin is not None and stdout is not None
    totals: dict[str, dict[str, int]] = {name: {} for name in cfg.processes}
    for op in OPS:
        _expect(stdout, f"ready {op}", driver)
        for proc in (worker, driver):
            proc.control("-z")
        stdin.write("go\n")
        stdin.flush()
        _expect(stdout, f"done {op}", driver)
        for proc in (worker, driver):
            proc.control("-d")
            if proc.profiled:
                kept = driver.folder / "kept" / f"{proc.name}-{op}.out"
                kept.parent.mkdir(exist_ok=True)
                shutil.copyfile(proc.last_dump(), kept)
                totals[proc.name][op] = totals_of(kept)
        stdin.write("next\n")
        stdin.flush()
    return totals


def run_instructions(cfg: InstructionsConfig, out_dir: Path) -> dict[str, Any]:
    """Start emulator, worker and driver; count instructions per call; stop them."""
    _tool("valgrind")
    root = Path(tempfile.mkdtemp(prefix="llmc-ir-", dir="/tmp"))  # short: unix socket paths
    keys = {kind: f"sk-emu-{kind}-{secrets.token_hex(12)}" for kind in PROVIDER_KEY_VARS}
    emulators = EmulatorProcess(root, keys)
    procs: list[_Measured] = []
    try:
        emulators.start()
        providers = emulator_providers(emulators, (cfg.provider,))
        (root / "config").mkdir()
        write_json_atomic(root / "config" / "providers.json", providers)
        ensure_link_key(root / "run" / "link.key")
        (root / "logs").mkdir()
        env = _environment(root, keys)
        model = providers["defaults"]["chat"]["model"]
        worker = _Measured("worker", [sys.executable, "-m", "workers", cfg.provider], env, root,
                           "worker" in cfg.processes)
        procs.append(worker)
        driver = _Measured("gateway", [sys.executable, "-m", "bench.instructions_driver", cfg.provider, model,
                                       str(cfg.calls), str(cfg.warmup)], env, root, "gateway" in cfg.processes,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        procs.append(driver)
        totals = _measure(cfg, worker, driver)
        _keep(root / "kept", out_dir / "callgrind")
    finally:
        for proc in reversed(procs):
            proc.stop()
        emulators.stop()
        if os.environ.get("LLMC_KEEP_SANDBOX") != "1":
            shutil.rmtree(root, ignore_errors=True)
    per_call = {name: {op: round(total / cfg.calls) for op, total in ops.items()} for name, ops in totals.items()}
    return {"config": {"calls": cfg.calls, "warmup": cfg.warmup, "provider": cfg.provider, "model": model,
                       "heartbeat_s": HEARTBEAT_S},
            "totals": totals, "per_call": per_call, "callgrind_dir": str(out_dir / "callgrind")}


def _keep(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for dump in source.glob("*.out"):
        shutil.copyfile(dump, target / dump.name)


def instructions_markdown(summary: dict[str, Any]) -> str:
    """Instructions per call, one row per process, one column per op."""
    cfg = summary["config"]
    out = ["# Instructions per call (callgrind)", "",
           f"{cfg['calls']} sequential calls per op after {cfg['warmup']} warm-up calls, provider "
           f"{cfg['provider']} ({cfg['model']}) on its emulator; whole process, every thread.", "",
           "| process | " + " | ".join(OPS) + " |", "|---|" + "---:|" * len(OPS)]
    for name, ops in summary["per_call"].items():
        out.append(f"| {name} | " + " | ".join(f"{ops[op]:,}" for op in OPS if op in ops) + " |")
    out += ["", f"Dumps for `callgrind_annotate`: `{summary['callgrind_dir']}`."]
    return "\n".join(out) + "\n"


def write_instructions(summary: dict[str, Any], out_dir: Path) -> None:
    """``instructions-latest.json`` and ``.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "instructions-latest.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (out_dir / "instructions-latest.md").write_text(instructions_markdown(summary))

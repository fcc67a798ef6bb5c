"""Start what is measured: the emulators, the full stack (via ``Sandbox``) and the baseline.

The three targets share one emulator process, so they are compared against the very
same upstream:

- ``direct``   HTTP straight to the OpenAI emulator: the floor;
- ``baseline`` ``bench.baseline_server``: one SDK ``MCPServer`` process, no auth;
- ``stack``    gateway + workers under supervisord, bearer auth on.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench.calls import Target
from bench.procs import ProcessMonitor
from bench.quota import EmulatorQuota
from bench.stack_names import DEFAULT_KIND, PROVIDERS
from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox, free_port

__all__ = ["STACK_PROGRAMS", "TARGET_NAMES", "World", "quota_of", "stack_pids", "start_world", "watch_sandbox"]

TARGET_NAMES = ("direct", "baseline", "stack")
# supervisord program name -> the name used in the report
STACK_PROGRAMS = {"gateway": "gateway", **{f"worker-{name}": f"worker:{name}" for name in PROVIDERS}}


@dataclass
class World:
    box: Sandbox
    baseline: subprocess.Popen[bytes]
    baseline_url: str
    quota: EmulatorQuota

    @property
    def targets(self) -> dict[str, Target]:
        return {
            "direct": Target("direct", "http", self.box.emulators.url(DEFAULT_KIND),
                             self.box.keys[DEFAULT_KIND]),
            "baseline": Target("baseline", "mcp", self.baseline_url),
            "stack": Target("stack", "mcp", self.box.url, self.box.token),
        }

    def watch(self, monitor: ProcessMonitor) -> None:
        watch_sandbox(self.box, monitor)
        monitor.watch("baseline", self.baseline.pid)


def quota_of(box: Sandbox) -> EmulatorQuota:
    return EmulatorQuota(box.emulators.url(DEFAULT_KIND), box.keys[DEFAULT_KIND])


def stack_pids(box: Sandbox) -> dict[str, int]:
    """Current pids of the supervised processes (re-read: a worker may have restarted)."""
    rpc = box.stack.rpc().supervisor
    pids = {label: int(rpc.getProcessInfo(program)["pid"]) for program, label in STACK_PROGRAMS.items()}
    supervisord = box.stack.supervisord_pid()
    if supervisord is not None:
        pids["supervisord"] = supervisord
    return pids


def watch_sandbox(box: Sandbox, monitor: ProcessMonitor) -> None:
    """Point the monitor at the stack's processes and the emulator (pid 0 = not running now)."""
    for name, pid in stack_pids(box).items():
        if pid:
            monitor.watch(name, pid)
    assert box.emulators.process is not None
    monitor.watch("emulator", box.emulators.process.pid)


def _start_baseline(box: Sandbox) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["BENCH_UPSTREAM_KEY"] = box.keys[DEFAULT_KIND]
    log = (box.root / "baseline.log").open("ab")
    command = [sys.executable, "-m", "bench.baseline_server", "--port", str(port),
               "--upstream", box.emulators.url(DEFAULT_KIND)]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/mcp"
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the baseline server did not start; see {box.root / 'baseline.log'}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def start_world() -> Iterator[World]:
    # chunk_delay_s=0: the emulator answers as fast as it can, so what is measured is
    # the software in between, not a simulated model.
    with Sandbox(chunk_delay_s=0.0) as box:
        box.wait_workers_up()
        baseline, url = _start_baseline(box)
        try:
            yield World(box, baseline, url, quota_of(box))
        finally:
            _stop(baseline)

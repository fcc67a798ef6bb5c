"""``python -m bench profile``: where the gateway's CPU goes under the 32-client chat load.

``--process worker:<provider>`` profiles that provider's worker instead.

py-spy samples the running gateway from outside (``--nonblocking``: it reads the
process's memory without pausing it, so the load is barely disturbed) and writes a
speedscope file; this module turns that file into "top functions by self and by
inclusive time" and "time by package", which is what tells an optimiser where to look.
py-spy leaves out idle samples (a thread waiting in epoll), so percentages are of the
gateway's busy time; its overall CPU use is reported next to them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.calls import Target
from bench.loadgen import Job, LoadGenPool, split
from bench.quota import MAX_NEEDED
from bench.targets import quota_of, stack_pids
from cli.stack import REPO_ROOT
from harness.sandbox import Sandbox

__all__ = ["ProfileConfig", "run_profile", "summarise_speedscope"]


@dataclass
class ProfileConfig:
    clients: int = 32
    # The emulator plays a 10,000-request quota (bench.quota); at ~650 chat calls/s a 20 s
    # window ran past it and the worker rightly paused the provider. 12 s stays inside.
    seconds: int = 12
    rate: int = 250  # samples per second
    tool: str = "chat"
    mode: str = "2026-07-28"
    loadgen_procs: int = 2
    top: int = 40
    process: str = "gateway"  # or "worker:<provider>": the report names of bench.targets.STACK_PROGRAMS


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed; install it into the venv: .venv/bin/pip install py-spy")
    return found


def _category(file: str) -> str:
    if "/site-packages/" in file:
        return file.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    root = str(REPO_ROOT) + "/"
    if file.startswith(root):
        return file[len(root):].split("/", 1)[0] + " (ours)"
    if "/lib/python3" in file:
        rest = file.split("/lib/python3", 1)[1].split("/", 1)[-1]
        return "stdlib:" + rest.split("/", 1)[0].removesuffix(".py")
    return "other"


def _short(file: str) -> str:
    for marker in ("/site-packages/", str(REPO_ROOT) + "/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# Functions that, as the innermost frame, mean a thread waiting in C code py-spy cannot
# tell from work: the log writer blocked on its queue.
_WAITING = frozenset({"LineWriter._run"})


def summarise_speedscope(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function, and self share per package."""
    data = orjson.loads(path.read_bytes())
    frames = data["shared"]["frames"]
    names = [f"{f['name']} ({_short(f.get('file') or '?')})" for f in frames]
    cats = [_category(f.get("file") or "") for f in frames]
    self_t: Counter[str] = Counter()
    incl_t: Counter[str] = Counter()
    ours: set[str] = set()  # names of frames in this repository's own code
    by_cat: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack or frames[stack[-1]]["name"] in _WAITING:
                continue
            total += weight
            threads[profile["name"]] += weight
            leaf = stack[-1]  # speedscope stacks run root first, leaf last
            self_t[names[leaf]] += weight
            by_cat[cats[leaf]] += weight
            for name in {names[i] for i in stack}:
                incl_t[name] += weight
    ours.update(names[i] for i, cat in enumerate(cats) if cat.endswith("(ours)"))

    def share(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "pct": round(100 * v / total, 2)} for k, v in counter.most_common(n)] if total else []

    # Frames on (nearly) every sample (runpy, asyncio.run, run_forever...) say nothing. Not exactly
    # every one: py-spy --nonblocking reads some stacks mid-switch and they come out cut short.
    spine = max(incl_t.values(), default=0.0) * 0.999
    incl_t = Counter({k: v for k, v in incl_t.items() if v < spine})

    return {"busy_seconds_sampled": round(total, 2), "threads": share(threads, 10), "self": share(self_t, top),
            "inclusive": share(incl_t, top), "by_package": share(by_cat, 30),
            "ours_inclusive": share(Counter({k: v for k, v in incl_t.items() if k in ours}), top)}


def _record(spy: str, pid: int, cfg: ProfileConfig, out: Path) -> subprocess.Popen[bytes]:
    command = [spy, "record", "--pid", str(pid), "--duration", str(cfg.seconds), "--rate", str(cfg.rate),
               "--format", "speedscope", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def run_profile(cfg: ProfileConfig, out_dir: Path) -> dict[str, Any]:
    spy = _py_spy()
    out_dir.mkdir(parents=True, exist_ok=True)
    speedscope = out_dir / f"profile-{cfg.process.replace(':', '-')}.speedscope.json"
    state: dict[str, Any] = {}
    with LoadGenPool(cfg.loadgen_procs) as pool, Sandbox(chunk_delay_s=0.0) as box:
        box.wait_workers_up()
        pid = stack_pids(box)[cfg.process]
        target = Target("stack", "mcp", box.url, box.token)
        pool.run([Job(target, (cfg.tool,), 8, 200, cfg.mode)], lambda: None, lambda: None)  # warm-up
        quota_of(box).ensure(MAX_NEEDED)  # see bench.quota: no quota pause while sampling

        def on_go() -> None:
            state["spy"] = _record(spy, pid, cfg, speedscope)
            state["cpu0"], state["t0"] = sum(psutil.Process(pid).cpu_times()[:2]), time.monotonic()

        def on_done() -> None:
            state["cpu1"], state["t1"] = sum(psutil.Process(pid).cpu_times()[:2]), time.monotonic()

        # The load outlasts the sampling by a second, so every sample sees full load.
        jobs = [Job(target, (cfg.tool,), c, 0, cfg.mode, duration_s=cfg.seconds + 1.0)
                for c in split(cfg.clients, cfg.loadgen_procs)]
        results = pool.run(jobs, on_go, on_done)
        output = state["spy"].communicate(timeout=60)[0].decode(errors="replace")
    if state["spy"].returncode != 0 or not speedscope.exists():
        raise RuntimeError(f"py-spy failed (exit {state['spy'].returncode}): {output.strip()[-500:]}")
    outcomes = [o for r in results for o in r.outcomes]
    wall = state["t1"] - state["t0"]
    summary = summarise_speedscope(speedscope, cfg.top)
    summary.update({
        "tool": cfg.tool, "clients": cfg.clients, "seconds": cfg.seconds, "rate_hz": cfg.rate,
        "calls": len(outcomes), "errors": sum(1 for o in outcomes if o.outcome != "ok"),
        "error_types": dict(Counter(o.outcome for o in outcomes if o.outcome != "ok")),
        "calls_per_s": round(len(outcomes) / wall, 1), "process": cfg.process,
        "cpu_pct_of_one_core": round(100 * (state["cpu1"] - state["cpu0"]) / wall, 1),
        "speedscope_file": str(speedscope),
        "py_spy_output": output.strip().splitlines()[-2:],
    })
    return summary


def _kinds(summary: dict[str, Any]) -> str:
    kinds = summary.get("error_types") or {}
    return ": " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) if kinds else ""


def profile_markdown(summary: dict[str, Any]) -> str:
    from bench.report import wrap

    out = [f"# Profile of the {summary['process']} process", "", *wrap(
        f"py-spy at {summary['rate_hz']} Hz for {summary['seconds']} s while {summary['clients']} clients called "
        f"{summary['tool']}: {summary['calls']} calls ({summary['errors']} errors{_kinds(summary)}), "
        f"{summary['calls_per_s']} calls/s; "
        f"the process used {summary['cpu_pct_of_one_core']}% of one core. Shares are of sampled busy time "
        f"({summary['busy_seconds_sampled']} s).")]
    sections = (("threads", "By thread"), ("by_package", "By package, self time"),
                ("self", "Top functions, self time"),
                ("inclusive", "Top functions, inclusive time (without the event loop's own spine)"),
                ("ours_inclusive", "This repository's functions, inclusive time"))
    for key, title in sections:
        out += ["", f"## {title}", "", "| % | function / package |", "|---:|---|"]
        out += [f"| {row['pct']:.1f} | `{row['name']}` |" for row in summary[key]]
    return "\n".join(out) + "\n"

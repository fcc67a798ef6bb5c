"""Process hardening for the gateway and the workers, and the records that let ``down`` find them.

``harden(name)`` is the first thing ``python -m gateway`` and ``python -m workers NAME``
do, before any key is read:

* **No core dumps.** ``RLIMIT_CORE`` goes to 0 (soft and hard, so the process cannot
  raise it again), and the process marks itself non-dumpable (``PR_SET_DUMPABLE 0``). A
  crash then writes no core file holding a provider key, and other processes of the
  same user can no longer read its memory, environment or file descriptors through
  ``/proc/PID`` or attach a debugger to it.
* **No orphans.** Under supervisord the process asks the kernel for SIGTERM when its
  parent dies (``PR_SET_PDEATHSIG``), so a SIGKILLed supervisord does not leave a
  gateway and workers serving on their own.
* **A pid record.** ``RUN_DIR/pids/NAME.pid`` holds the pid, the kernel's start time
  of the process and its own reading of its dumpable flag (``dumpable=0``), so
  ``llm-caller down`` can stop a leftover process of *this* run folder and never a
  stranger that happens to reuse the pid (:func:`leftover_processes`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessRecord", "harden", "is_dumpable", "leftover_processes", "prctl_pdeathsig", "record_path", "start_time",
]

_PR_SET_PDEATHSIG = 1
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
# What a recorded process's command line must contain: ours, and nothing else, is ever signalled.
_OUR_COMMANDS = ("-m gateway", "-m workers", "supervisord")


def harden(name: str, env: dict[str, str] | None = None) -> None:
    """Disable core dumps, become non-dumpable, die with supervisord, and record this process.

    Raises ``OSError`` when the kernel refuses a setting: a process that cannot protect
    its key must not go on to read it.
    """
    env = dict(os.environ) if env is None else env
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_DUMPABLE, 0)
        if env.get("SUPERVISOR_ENABLED") == "1":
            _die_with_parent()
    run_dir = Path(env.get("LLMC_RUN_DIR", "run")).absolute()
    _write_record(record_path(run_dir, name), os.getpid())


def is_dumpable() -> bool:
    """Whether this process may dump core and be read by same-user processes (PR_GET_DUMPABLE)."""
    return bool(_prctl(_PR_GET_DUMPABLE, 0))


def _prctl(option: int, value: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result: int = libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}) failed: {os.strerror(err)}")
    return result


def prctl_pdeathsig(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only)."""
    if sys.platform.startswith("linux"):
        _prctl(_PR_SET_PDEATHSIG, sig)


def _die_with_parent() -> None:
    """SIGTERM when supervisord dies; exit now if it already died before the request took hold."""
    prctl_pdeathsig(signal.SIGTERM)
    parent = os.getppid()
    try:
        command = Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        command = b""
    if parent == 1 or b"supervisord" not in command:
        sys.exit(0)  # orphaned between fork and here: nobody would stop us, so do not start


@dataclass(frozen=True)
class ProcessRecord:
    """A pid file: which process, started when (kernel clock ticks since boot)."""

    path: Path
    pid: int
    started: int


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: fixed for a process's life, different for a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def _write_record(path: Path, pid: int) -> None:
    started = start_time(pid)
    if started is None:
        return  # no /proc (not Linux): nothing to record against
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        # The third field is this process's own reading of its dumpable flag, for operators and tests.
        handle.write(f"{pid} {started} dumpable={int(is_dumpable()) if sys.platform.startswith('linux') else '?'}\n")
    os.replace(tmp, path)


def _read_record(path: Path) -> ProcessRecord | None:
    try:
        pid_text, started_text = path.read_text().split()[:2]
        return ProcessRecord(path, int(pid_text), int(started_text))
    except (OSError, ValueError):
        return None


def leftover_processes(run_dir: Path) -> list[ProcessRecord]:
    """Recorded processes of this run folder that are still alive (same pid *and* start time, our command).

    A record whose process is gone, or whose pid now belongs to another program, is
    deleted on the way, so it is never looked at again.
    """
    alive = []
    for path in sorted((run_dir / "pids").glob("*.pid")):
        record = _read_record(path)
        if record is not None and _is_ours(record):
            alive.append(record)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return alive


def _is_ours(record: ProcessRecord) -> bool:
    if start_time(record.pid) != record.started:
        return False
    try:
        command = Path(f"/proc/{record.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(part in command for part in _OUR_COMMANDS)

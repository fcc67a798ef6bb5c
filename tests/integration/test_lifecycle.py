"""Process lifecycle against real processes: every way of stopping, cores, log modes, one worker per provider.

Issue #12 items 4, 5, 9 and issue #13 item 4. Each test drives supervisord, the gateway
and the workers as an operator (or an attacker on the same machine) would, and prints
the figures it measured.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from cli.stack import REPO_ROOT, scrubbed_environment
from harness.sandbox import Sandbox
from shared.hardening import record_path, start_time
from tests.integration.conftest import run
from tests.polling import wait_until

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------- helpers


def _cli(box: Sandbox, *args: str, env: dict[str, str] | None = None,
         timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``llm-caller ARGS`` for the sandbox's folders and port, as an operator types it."""
    settings = box.stack.settings
    command = [sys.executable, "-m", "cli.main", *args, "--config-dir", str(settings.config_dir),
               "--run-dir", str(settings.run_dir), "--log-dir", str(settings.log_dir), "--port", str(settings.port)]
    return subprocess.run(command, env=env or box.launcher_environ(), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _program_pids(box: Sandbox) -> dict[str, int]:
    """Running programs by their supervisorctl name (``group:name`` for a group member)."""
    return {(p["name"] if p["group"] == p["name"] else f"{p['group']}:{p['name']}"): int(p["pid"])
            for p in box.stack.processes() if p["pid"]}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _key_files(box: Sandbox) -> list[str]:
    folder = box.stack.settings.secrets_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _kill_all(pids: list[int]) -> None:
    """Test cleanup on failure: never leave a process of ours behind."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _stray_worker(box: Sandbox) -> subprocess.Popen[bytes]:
    """A worker of this run folder that supervisord does not own (started by hand, say): only its record finds it."""
    env = scrubbed_environment(box.stack.settings)
    stray = subprocess.Popen([sys.executable, "-m", "workers", "ghost"], env=env, cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        record = record_path(box.stack.settings.run_dir, "worker-ghost")
        deadline = time.monotonic() + 20
        while not record.exists() and stray.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a negative check: it stays up past its start-up (it has no line to wait for)
        assert stray.poll() is None, "the hand-started worker exited"
    except BaseException:
        stray.kill()
        stray.wait(10)
        raise
    return stray


def _decoys(box: Sandbox) -> list[subprocess.Popen[bytes]]:
    """Processes named in pid records that must never be signalled: a reused pid, a stranger's command."""
    reused = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "workers", "decoy"])
    stranger = subprocess.Popen(["sleep", "120"])
    commands = {reused: b"decoy", stranger: b"sleep\x00120"}  # until exec, /proc shows this test's own command line
    wait_until(lambda: all(mark in Path(f"/proc/{p.pid}/cmdline").read_bytes() for p, mark in commands.items()),
               10, "both decoys run their own commands")
    folder = box.stack.settings.run_dir / "pids"
    folder.mkdir(mode=0o700, exist_ok=True)
    started = {p.pid: start_time(p.pid) for p in (reused, stranger)}
    (folder / "worker-reused.pid").write_text(f"{reused.pid} {int(started[reused.pid] or 0) + 7}\n")
    (folder / "worker-stranger.pid").write_text(f"{stranger.pid} {started[stranger.pid]}\n")
    return [reused, stranger]


def _sigkill_supervisord(box: Sandbox) -> list[int]:
    """SIGKILL supervisord; returns the pids of the gateway and workers it ran."""
    pids = list(_program_pids(box).values())
    supervisord = box.stack.supervisord_pid()
    assert supervisord is not None
    os.kill(supervisord, signal.SIGKILL)
    _wait_dead([supervisord], 10)
    return pids


# ---------------------------------------------------------------- #12.4 keys left on disk


def test_sigkill_of_supervisord_then_down_stops_the_orphans_and_removes_the_keys() -> None:
    with Sandbox(heartbeat_s=0.25) as box:
        box.wait_workers_up()
        assert _key_files(box) == ["anthropic", "openai"]
        started_here: list[subprocess.Popen[bytes]] = []
        pids: list[int] = []
        try:
            stray = _stray_worker(box)
            decoys = _decoys(box)
            started_here += [stray, *decoys]
            pids = [*_sigkill_supervisord(box), stray.pid]
            time.sleep(1.0)  # part of the scenario: the orphans run on for a while, as after a real crash
            alive = [pid for pid in pids if _alive(pid)]
            print(f"\n1 s after SIGKILL of supervisord: {len(alive)} of {len(pids)} gateway/worker processes "
                  f"alive; key files {_key_files(box)}; port in use: {not _port_free(box.stack.settings.port)}")
            started = time.perf_counter()
            down = _cli(box, "down")
            took = time.perf_counter() - started
            print(f"`llm-caller down` took {took:.2f}s, exit {down.returncode}: {down.stdout.strip()}")
            assert down.returncode == 0, down.stderr
            assert "leftover" in down.stdout
            assert [pid for pid in pids if _alive(pid)] == []
            assert all(decoy.poll() is None for decoy in decoys), "a process that is not ours was signalled"
            assert _key_files(box) == []
            assert _port_free(box.stack.settings.port)
            up = _cli(box, "up", "--detach")
            print(f"the next `up` on the same port: exit {up.returncode}: {up.stdout.strip()}")
            assert up.returncode == 0, up.stderr
            box.wait_workers_up()
        finally:
            _kill_all([*pids, *(process.pid for process in started_here)])
            for process in started_here:
                process.wait(10)


def test_sigkill_of_supervisord_then_the_next_up_clears_the_leftovers() -> None:
    with Sandbox(heartbeat_s=0.25) as box:
        box.wait_workers_up()
        stray: subprocess.Popen[bytes] | None = None
        pids: list[int] = []
        try:
            stray = _stray_worker(box)
            pids = [*_sigkill_supervisord(box), stray.pid]
            up = _cli(box, "up", "--detach")
            print(f"\n`up` after SIGKILL of supervisord: exit {up.returncode}: {(up.stdout + up.stderr).strip()}")
            assert up.returncode == 0, up.stderr
            assert [pid for pid in pids if _alive(pid)] == []
            box.wait_workers_up()
            fresh = _program_pids(box)
            assert set(fresh.values()).isdisjoint(pids)
            down = _cli(box, "down")
            assert down.returncode == 0 and "stopped" in down.stdout
            print(f"then `down`: {down.stdout.strip()}; key files left: {_key_files(box)}")
            assert _key_files(box) == []
            assert [pid for pid in fresh.values() if _alive(pid)] == []
        finally:
            if stray is not None:
                _kill_all([*pids, stray.pid])
                stray.wait(10)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_run_stopped_by_ctrl_c_or_sigterm_leaves_no_key_file(how: str) -> None:
    with Sandbox(heartbeat_s=0.25) as box:
        box.stack.stop()  # the sandbox's own detached stack; `run` starts the same one in the foreground
        settings = box.stack.settings
        command = [sys.executable, "-m", "cli.main", "run", "--config-dir", str(settings.config_dir),
                   "--run-dir", str(settings.run_dir), "--log-dir", str(settings.log_dir),
                   "--port", str(settings.port)]
        # A session of its own stands in for the terminal: Ctrl-C signals its whole foreground group.
        launcher = subprocess.Popen(command, env=box.launcher_environ(), cwd=REPO_ROOT, start_new_session=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        pids: list[int] = []
        try:
            deadline = time.monotonic() + 30
            while not box.stack.is_running():
                assert launcher.poll() is None and time.monotonic() < deadline, "`llm-caller run` did not start"
                time.sleep(0.1)
            box.stack.wait_ready()
            box.wait_workers_up()
            pids = list(_program_pids(box).values())
            assert _key_files(box) == ["anthropic", "openai"]
            started = time.perf_counter()
            if how == "ctrl-c":
                os.killpg(launcher.pid, signal.SIGINT)
            else:
                launcher.send_signal(signal.SIGTERM)
            output, _ = launcher.communicate(timeout=60)
            took = time.perf_counter() - started
            print(f"\n{how}: `llm-caller run` exited {launcher.returncode} after {took:.2f}s; "
                  f"key files left: {_key_files(box)}; processes left: {[p for p in pids if _alive(p)]}")
            print(output.strip().splitlines()[-1])
            assert _key_files(box) == []
            assert [pid for pid in pids if _alive(pid)] == []
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
            _kill_all(pids)


# ------------------------------------------------------- #12.5 cores, #12.9 log folder modes


@pytest.fixture(scope="module")
def lbox() -> Iterator[Sandbox]:
    with Sandbox(heartbeat_s=0.25, separate_log_dir=True) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _core_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError("no core limit in /proc/PID/limits")


def _cores(folder: Path) -> set[Path]:
    return {p for p in folder.glob("core*") if p.is_file()}


def _control_core(folder: Path) -> int:
    """An unhardened Python killed by SIGSEGV in ``folder``: the size of the core it leaves (0: none)."""
    code = ("import os, resource, signal; r = resource.RLIMIT_CORE; "
            "resource.setrlimit(r, (resource.getrlimit(r)[1],) * 2); os.kill(os.getpid(), signal.SIGSEGV)")
    subprocess.run([sys.executable, "-c", code], cwd=folder, check=False)
    return sum(p.stat().st_size for p in _cores(folder))


def test_gateway_and_workers_dump_no_core_even_when_allowed_and_crashed(lbox: Sandbox) -> None:
    pids = _program_pids(lbox)
    limits = {name: _core_limits(pid) for name, pid in pids.items()}
    print(f"\nRLIMIT_CORE (soft, hard) per process: {limits}")
    paths = {name: record_path(lbox.stack.settings.run_dir, name) for name in pids}
    records = {name: path.read_text().split() if path.exists() else [] for name, path in paths.items()}
    print(f"pid records (pid, start time, the process's own PR_GET_DUMPABLE): {records}")
    with tempfile.TemporaryDirectory() as scratch:
        control = _control_core(Path(scratch))
    print(f"control: an unhardened python killed by SIGSEGV left a core of {control} bytes")
    if control == 0:
        pytest.skip("this machine writes no core files into the process's folder (core_pattern)")
    worker = pids["worker-lmstudio"]
    before = _cores(REPO_ROOT)
    try:
        # As `ulimit -c unlimited` would have it; only root may raise a hard limit again.
        resource.prlimit(worker, resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print(f"worker limit raised from outside to {_core_limits(worker)}: only non-dumpable stops a core now")
    except PermissionError:
        print("the worker's hard core limit 0 cannot be raised again from outside (EPERM)")
    os.kill(worker, signal.SIGSEGV)
    _wait_dead([worker], 10)  # a core is written before its process becomes a zombie (as for the control)
    written = _cores(REPO_ROOT) - before
    try:
        sizes = {p.name: p.stat().st_size for p in written}
        print(f"SIGSEGV'd worker {worker}: core files written (bytes): {sizes}")
        assert written == set()
    finally:
        for path in written:
            path.unlink()
    lbox.wait_workers_up()
    assert all(limit == ("0", "0") for limit in limits.values())
    assert {name: (fields[0], fields[2]) for name, fields in records.items() if len(fields) == 3} == {
        name: (str(pid), "dumpable=0") for name, pid in pids.items()}


def _private(folder: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in [folder, *sorted(folder.iterdir())]}


def test_log_folder_outside_the_run_folder_is_0700_with_every_file_0600(lbox: Sandbox) -> None:
    async def traffic() -> None:
        async with lbox.client() as client:
            await client.call_tool("chat", {"prompt": "hello", "provider": "lmstudio"})

    run(traffic())
    with contextlib.suppress(BaseException):  # a wrong token: an audit line, and a failed client by design
        run(_wrong_token(lbox))
    folder = lbox.log_dir
    assert folder.parent != lbox.stack.settings.run_dir
    modes = _private(folder)
    print(f"\nlog folder {folder} (outside {lbox.stack.settings.run_dir}): {modes}")
    assert {"supervisord.log", "gateway.log", "audit.jsonl", "worker-openai.log"} <= set(modes)
    assert modes[folder.name] == "0o700"
    assert {name: mode for name, mode in modes.items() if name != folder.name and mode != "0o600"} == {}

    # A folder an operator made (or an old release left) wide open is made private at the next start.
    lbox.stack.stop()
    folder.chmod(0o755)
    (folder / "gateway.log").chmod(0o644)
    lbox.stack.start(environ=lbox.launcher_environ())
    lbox.stack.wait_ready()
    again = _private(folder)
    print(f"after a restart over a 0755 folder with a 0644 file: {again[folder.name]}, "
          f"gateway.log {again['gateway.log']}")
    assert again[folder.name] == "0o700" and again["gateway.log"] == "0o600"


async def _wrong_token(box: Sandbox) -> None:
    async with box.client(token="llmc_" + "w" * 43) as client:
        await client.call_tool("getHealth", {})


# ---------------------------------------------------- #13.4 one worker per configured provider


def _only_lmstudio(providers: dict[str, Any]) -> None:
    for name in ("openai", "anthropic"):
        del providers["providers"][name]
    providers["defaults"] = {}


@pytest.fixture(scope="module")
def lmbox() -> Iterator[Sandbox]:
    with Sandbox(heartbeat_s=0.25, tweak=_only_lmstudio) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _link_failures(box: Sandbox) -> int:
    return sum(path.read_text(errors="replace").count("link_auth_failed")
               for path in (box.log_dir / "gateway.log", box.log_dir / "audit.jsonl") if path.exists())


def test_only_the_configured_provider_gets_a_worker(lmbox: Sandbox) -> None:
    # A negative check: longer than the ~4 s in which an unconfigured worker would retry its handshake.
    time.sleep(5)
    programs = _program_pids(lmbox)
    rss = {name: psutil.Process(pid).memory_info().rss / 2**20 for name, pid in programs.items()}
    print(f"\nonly LM Studio configured: programs {sorted(programs)}; RSS MB "
          f"{ {k: round(v, 1) for k, v in rss.items()} }; link_auth_failed lines: {_link_failures(lmbox)}")
    assert sorted(programs) == ["gateway", "worker-lmstudio"]
    assert _link_failures(lmbox) == 0


def test_provider_add_and_remove_change_a_running_stack_without_restarting_the_other_workers(
        lmbox: Sandbox) -> None:
    before = _program_pids(lmbox)
    env = dict(os.environ, LLMC_RUN_DIR=str(lmbox.stack.settings.run_dir))
    config = ["--config-dir", str(lmbox.stack.settings.config_dir)]
    started = time.perf_counter()
    added = subprocess.run(
        [sys.executable, "-m", "cli.main", "config", "providers", "add", "lmstudio-2", "--kind", "lmstudio",
         "--base-url", lmbox.emulators.url("lmstudio"), "--model", "qwen2.5-7b-instruct:chat", "--no-probe",
         "--yes", *config], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90, check=False)
    took = time.perf_counter() - started
    print(f"\n`config providers add lmstudio-2` took {took:.2f}s: {added.stdout.strip().splitlines()[-1:]}")
    assert added.returncode == 0 and "warning" not in added.stderr, added.stderr
    lmbox.stack.wait_ready()
    lmbox.wait_workers_up()
    during = _program_pids(lmbox)
    assert sorted(during) == ["gateway", "worker-lmstudio", "worker-lmstudio-2"]
    assert during["worker-lmstudio"] == before["worker-lmstudio"]

    async def chat() -> dict[str, Any]:
        async with lmbox.client() as client:
            result = await client.call_tool("chat", {"prompt": "hi", "provider": "lmstudio-2"})
        assert result.structured_content is not None
        return result.structured_content

    assert run(chat())["provider"] == "lmstudio-2"
    removed = subprocess.run(
        [sys.executable, "-m", "cli.main", "config", "providers", "remove", "lmstudio-2", "--yes", *config],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90, check=False)
    print(f"`config providers remove lmstudio-2`: {removed.stdout.strip().splitlines()[-1:]}")
    assert removed.returncode == 0 and "warning" not in removed.stderr, removed.stderr
    lmbox.stack.wait_ready()
    lmbox.wait_workers_up()
    after = _program_pids(lmbox)
    print(f"worker pids before/during/after: {before} / {during} / {after}; "
          f"link_auth_failed lines: {_link_failures(lmbox)}")
    assert sorted(after) == ["gateway", "worker-lmstudio"]
    assert after["worker-lmstudio"] == before["worker-lmstudio"]
    assert not _alive(during["worker-lmstudio-2"])
    assert _link_failures(lmbox) == 0

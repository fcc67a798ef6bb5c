"""Starting, watching and stopping the supervisord process tree.

The one rule this module exists for: **supervisord starts with a scrubbed environment.**
Every child inherits supervisord's environment, so a provider key exported in the
operator's shell would otherwise be readable by the gateway and by every other
provider's worker. Instead, each key the config references by environment variable is
written to ``$LLMC_RUN_DIR/secrets/<provider>`` (0600, in a 0700 folder) for that
provider's worker alone to read, and supervisord gets only PATH, locale, LLMC_* settings
and the OpenTelemetry OTEL_* variables.

Before supervisord starts, the launcher also makes sure the worker link key exists
(``$LLMC_LINK_KEY_FILE``, default ``$LLMC_RUN_DIR/link.key``; 0600, created when
missing) and hands every child its *path*, never its value (decision D11).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from supervisor.xmlrpc import SupervisorTransport

from shared.config import ProvidersFile, load_client_registry, load_providers
from shared.files import FileWriteError, write_bytes_atomic, write_secret_file
from shared.hardening import leftover_processes, prctl_pdeathsig
from shared.link_keys import KeyFileError, ensure_link_key
from shared.settings import Settings, read_stack_record
from shared.startup_checks import refusal_file
from shared.timeline import ENV_VAR as TIMELINE_VAR

__all__ = ["CODE_ROOT", "REPO_ROOT", "SUPERVISORD_CONF", "Stack", "StackError", "scrubbed_environment",
           "worker_program", "write_worker_programs"]


def _packaged(name: str) -> Path:
    """A data file shipped inside the ``cli`` package, as a file supervisord can be pointed at."""
    resource = importlib.resources.files("cli").joinpath(name)
    if not isinstance(resource, Path) or not resource.is_file():
        raise RuntimeError(f"the installation lacks cli/{name}; reinstall llm-caller")
    return resource


# The folder holding the packages (cli, gateway, shared, workers, emulators) that were imported:
# the checkout in a checkout, site-packages in an installation. Children (`python -m gateway`,
# `python -m workers NAME`) start in it, so they import the very code the launcher runs (in a
# source checkout or worktree the current folder comes first on sys.path); nothing is read from it.
CODE_ROOT = Path(__file__).resolve().parent.parent
# Tests and bench name the checkout REPO_ROOT; in a checkout the two are the same folder.
REPO_ROOT = CODE_ROOT
# The supervisord configuration ships inside the package (the checkout's root supervisord.conf is a
# symbolic link to it, for `supervisorctl -c supervisord.conf` in the runbook).
SUPERVISORD_CONF = _packaged("supervisord.conf")

# Variables a child legitimately needs; everything else is dropped.
_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
_OTEL_PREFIXES = ("LLMC_OTEL_", "OTEL_")


class StackError(Exception):
    """The stack could not be started, reached or stopped; the message says why."""


def scrubbed_environment(settings: Settings, source: dict[str, str] | None = None) -> dict[str, str]:
    source = dict(os.environ) if source is None else source
    env = {k: source[k] for k in _KEEP if k in source}
    env.update(
        LLMC_CONFIG_DIR=str(settings.config_dir),
        LLMC_RUN_DIR=str(settings.run_dir),
        LLMC_LOG_DIR=str(settings.log_dir),
        LLMC_HOST=settings.host,
        LLMC_PORT=str(settings.port),
        LLMC_LOG_LEVEL=settings.log_level,
        LLMC_HEARTBEAT_S=str(settings.heartbeat_s),
        LLMC_LIVENESS=str(settings.liveness),
        # The path only: each process reads the key itself and checks the file is private.
        LLMC_LINK_KEY_FILE=str(settings.link_key_file),
        LLMC_PYTHON=sys.executable,
        LLMC_CODE_ROOT=str(CODE_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings.link.to_env())
    env.update(settings.security.to_env())
    env.update(settings.store.to_env())
    # Per-process log levels (LLMC_LOG_LEVEL_GATEWAY, LLMC_LOG_LEVEL_WORKER_OPENAI, ...) and
    # rotation sizes pass through as given; supervisord.conf reads the rotation pair.
    env.update({k: v for k, v in source.items() if k.startswith("LLMC_LOG_LEVEL_")})
    env.update({k: source[k] for k in ("LLMC_MANIFEST_PUBKEY", "LLMC_MANIFEST_FILE", TIMELINE_VAR) if k in source})
    # Span export (shared/otel.py): LLMC_OTEL_EXPORTER and the standard OTEL_* variables
    # (OTLP endpoint and headers, service name, resource, batch knobs) reach every process.
    env.update({k: v for k, v in source.items() if k.startswith(_OTEL_PREFIXES)})
    env["LLMC_LOG_MAX_BYTES"] = source.get("LLMC_LOG_MAX_BYTES", "10MB")
    env["LLMC_LOG_BACKUPS"] = source.get("LLMC_LOG_BACKUPS", "5")
    return env


def worker_program(provider: str) -> str:
    """The supervisord program of a provider's worker (``supervisorctl restart worker-openai``)."""
    return f"worker-{provider}"


def write_worker_programs(settings: Settings, providers: ProvidersFile) -> list[str]:
    """One program section per configured provider in RUN_DIR/workers.d, which supervisord.conf includes.

    Each worker is a program of its own (not a member of a group), so supervisord can add
    or remove one while the others keep running: a group whose member list changes is
    stopped and started whole. Returns the program names written.
    """
    folder = settings.run_dir / "workers.d"
    folder.mkdir(mode=0o700, exist_ok=True)
    wanted = {worker_program(name): name for name in providers.providers}
    for old in folder.glob("*.conf"):
        if old.stem not in wanted:
            old.unlink()
    for program, name in wanted.items():
        text = _WORKER_PROGRAM.format(program=program, name=name, root=CODE_ROOT)
        target = folder / f"{program}.conf"
        if not target.exists() or target.read_text() != text:
            write_bytes_atomic(target, text.encode(), mode=0o600)
    return sorted(wanted)


_WORKER_PROGRAM = """; Written by `llm-caller up` for the provider {name!r} in providers.json; do not edit.
[program:{program}]
command=%(ENV_LLMC_PYTHON)s -m workers {name}
directory={root}
priority=20
autostart=true
autorestart=unexpected
exitcodes=78
startsecs=1
startretries=3
stopsignal=TERM
stopwaitsecs=5
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=%(ENV_LLMC_LOG_DIR)s/worker-{name}.log
stdout_logfile_maxbytes=%(ENV_LLMC_LOG_MAX_BYTES)s
stdout_logfile_backups=%(ENV_LLMC_LOG_BACKUPS)s
"""


def hand_off_secrets(providers: ProvidersFile, settings: Settings, source: dict[str, str] | None = None,
                     only: set[str] | None = None) -> list[str]:
    """Write each env-referenced key to its worker's 0600 hand-off file. Returns the providers handed a key.

    ``only`` limits the hand-off to those providers (a provider added to a running stack);
    the others' files are left as they are.
    """
    source = dict(os.environ) if source is None else source
    handed = []
    for name, config in providers.providers.items():
        if only is not None and name not in only:
            continue
        target = settings.secrets_dir / name
        value = source.get(config.secret.env, "").strip() if config.secret and config.secret.env else ""
        if value:
            write_secret_file(target, value)
            handed.append(name)
        elif target.exists():
            target.unlink()  # a stale key from an earlier run must not be picked up
    return handed


def private_log_dir(folder: Path) -> None:
    """The log folder 0700 and every file in it 0600, wherever it is (created when missing)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink():
            entry.chmod(0o600)


@dataclass(frozen=True)
class WorkerChange:
    """What ``Stack.sync_workers`` did to a running stack."""

    added: list[str]
    removed: list[str]


@dataclass
class Stack:
    settings: Settings

    # ----------------------------------------------------------------- control

    def check_config(self) -> ProvidersFile:
        """Load both config files; raises ConfigError with the operator message."""
        providers = load_providers(self.settings.providers_file)
        load_client_registry(self.settings.registry_file)
        return providers

    def start(self, *, foreground: bool = False, environ: dict[str, str] | None = None) -> int:
        """Start supervisord; in the foreground, run it until it exits and return its exit code.

        Leftovers of an earlier run that ended without ``down`` (a SIGKILLed supervisord:
        its gateway and workers, its key files) are cleared first.
        """
        providers = self.check_config()
        if self.is_running():
            raise StackError(f"already running (supervisord socket {self.socket_path} answers)")
        if self.supervisord_pid() is not None:
            raise StackError(f"a supervisord for {self.settings.run_dir} is running but does not answer yet; "
                             "fix: wait and retry, or `llm-caller down` first")
        self.clear_leftovers()
        if _port_in_use(self.settings.host, self.settings.port):
            raise StackError(f"port {self.settings.port} is in use by another process; choose another with --port")
        self.settings.ensure_run_dir()
        private_log_dir(self.settings.log_dir)
        try:
            ensure_link_key(self.settings.link_key_file)
        except (KeyFileError, FileWriteError) as exc:
            raise StackError(str(exc)) from None
        hand_off_secrets(providers, self.settings, environ)
        write_worker_programs(self.settings, providers)
        self.write_record()
        env = scrubbed_environment(self.settings, environ)
        command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(SUPERVISORD_CONF)]
        if foreground:
            return self._run_foreground([*command, "-n"], env)
        # umask 077: supervisord.log and every child log are created 0600 (0644 otherwise).
        subprocess.run(command, env=env, check=True, cwd=CODE_ROOT, stdin=subprocess.DEVNULL, umask=0o077)
        return 0

    def _run_foreground(self, command: list[str], env: dict[str, str]) -> int:
        """supervisord -n as our child; Ctrl-C, SIGTERM or SIGHUP stop it, then the keys are removed."""
        children: list[subprocess.Popen[bytes]] = []
        requested: list[int] = []

        def forward(signum: int, _frame: object) -> None:
            # SIGHUP would make supervisord reload; a closed terminal means stop.
            requested.append(signal.SIGTERM if signum == signal.SIGHUP else signum)
            for child in children:
                child.send_signal(requested[-1])

        # Handlers first: a Ctrl-C at any moment from here on ends in the cleanup below.
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            children.append(subprocess.Popen(command, env=env, cwd=CODE_ROOT, stdin=subprocess.DEVNULL, umask=0o077,
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             preexec_fn=_term_with_parent))  # safe: the launcher has one thread
            if requested:  # a stop asked for while supervisord was being started
                children[0].send_signal(signal.SIGTERM)
            _relay_output(children[0])
            code = children[0].wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.clear_leftovers()
        return code

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until *our* gateway answers its liveness probe (its pid matches supervisord's)."""
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.settings.host}:{self.settings.port}/healthz"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    answered = orjson.loads(response.read()).get("pid")
                if answered == self._gateway_pid():
                    return
            except (OSError, ValueError, xmlrpc.client.Fault):
                pass
            if not self.is_running():
                raise StackError(f"supervisord exited; see {self.settings.log_dir}/supervisord.log")
            self._raise_if_gateway_gave_up()
            time.sleep(0.1)
        raise StackError(f"the gateway did not answer on {url} within {timeout_s:g}s; see {self.settings.log_dir}")

    def _raise_if_gateway_gave_up(self) -> None:
        """A gateway that refused to start (exit 78) or kept failing will not answer: say why now."""
        try:
            state = str(self.rpc().supervisor.getProcessInfo("gateway")["statename"])
        except (OSError, xmlrpc.client.Fault):
            return
        if state not in ("FATAL", "EXITED"):
            return
        try:
            why = refusal_file(self.settings.run_dir, "gateway").read_text().strip()
        except OSError:
            if state == "EXITED":
                return  # any exit but a refusal is restarted: keep waiting
            why = f"see {self.settings.log_dir}/gateway.log"
        raise StackError(f"the gateway is {state} and will not be restarted: {why}")

    def stop(self, timeout_s: float = 20.0) -> int:
        """Stop supervisord and its tree, then any leftover of this run folder; remove the keys.

        Returns how many leftover processes (orphans of a supervisord that died) had to be
        stopped on their own.
        """
        pid = self.supervisord_pid()
        if pid is not None:
            try:
                self.rpc().supervisor.shutdown()
            except (OSError, xmlrpc.client.Fault):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone([pid], timeout_s):
                os.kill(pid, signal.SIGKILL)
        return self.clear_leftovers()

    def clear_leftovers(self, timeout_s: float = 10.0) -> int:
        """Stop recorded gateway/worker processes of this run folder still alive; delete the key files.

        Only processes whose pid record matches (same pid, same kernel start time, our
        command line) are signalled, so a recycled pid is never hit. Returns how many.
        """
        leftovers = [record.pid for record in leftover_processes(self.settings.run_dir)]
        for pid in leftovers:
            _signal(pid, signal.SIGTERM)
            _signal(pid, signal.SIGCONT)  # a stopped process would otherwise hold the signal
        if not _wait_gone(leftovers, timeout_s):
            for pid in leftovers:
                _signal(pid, signal.SIGKILL)
            _wait_gone(leftovers, 2.0)
        shutil.rmtree(self.settings.secrets_dir, ignore_errors=True)
        self.settings.record_file.unlink(missing_ok=True)
        return len(leftovers)

    def write_record(self) -> None:
        """Record port, host, config and log folders in RUN_DIR/stack.json (0600) for later commands.

        ``status``, ``down``, ``restart``, ``stdio``, ``token issue`` and the config commands
        read it through ``Settings.resolve``; ``clear_leftovers`` (so ``down``) removes it.
        """
        write_bytes_atomic(self.settings.record_file, orjson.dumps(self.settings.stack_record()), mode=0o600)

    def restart_worker(self, name: str) -> str:
        """Restart ``gateway`` or one worker, named ``openai`` or ``worker-openai``; returns the name used."""
        rpc = self.rpc().supervisor
        full = self._process_name(rpc, name)
        try:
            rpc.stopProcess(full, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise StackError(f"cannot stop {full}: {fault.faultString}") from None
        rpc.startProcess(full, True)
        return full

    @staticmethod
    def _process_name(rpc: Any, name: str) -> str:
        """supervisord's name for ``name`` (provider name or program name); a wrong one lists the valid names.

        ``workers:NAME``, the name before each worker became a program of its own, is still understood.
        """
        programs = {str(info["name"]) for info in rpc.getAllProcessInfo()}
        for candidate in (name, worker_program(name), worker_program(name.removeprefix("workers:"))):
            if candidate in programs:
                return candidate
        valid = sorted(p.removeprefix("worker-") for p in programs)
        raise StackError(f"no process named {name!r}; valid names: {', '.join(valid)} "
                         "(a worker may also be given as worker-NAME)")

    def sync_workers(self, environ: dict[str, str] | None = None) -> WorkerChange | None:
        """Make a running stack run exactly one worker per provider in providers.json.

        A new provider's program is added and started, a removed one's stopped and
        dropped; every other worker keeps running untouched. The gateway, which loads the
        provider list once, is restarted when the list changed. None when not running.
        """
        if not self.is_running():
            return None
        self._refuse_other_config()
        providers = self.check_config()
        rpc = self.rpc().supervisor
        before = {p["name"] for p in rpc.getAllProcessInfo() if p["name"] != "gateway"}
        wanted = set(write_worker_programs(self.settings, providers))
        new = {name for name in providers.providers if worker_program(name) not in before}
        hand_off_secrets(providers, self.settings, environ, only=new)
        [[added, _changed, removed]] = rpc.reloadConfig()
        removed = [name for name in removed if name != "gateway" and name not in wanted]
        for name in removed:
            with contextlib.suppress(xmlrpc.client.Fault):  # already stopped
                rpc.stopProcessGroup(name, True)
            rpc.removeProcessGroup(name)
            (self.settings.secrets_dir / name.removeprefix("worker-")).unlink(missing_ok=True)
        if added or removed:
            # First, so a new worker's first handshake meets a gateway that knows its name.
            self.restart_worker("gateway")
        for name in added:
            rpc.addProcessGroup(name)
        return WorkerChange(sorted(added), sorted(removed))

    def _refuse_other_config(self) -> None:
        """A stack started with another config folder must not be given this folder's workers."""
        running = read_stack_record(self.settings.run_dir).get("LLMC_CONFIG_DIR")
        if running is not None and Path(running) != self.settings.config_dir:
            raise StackError(f"the stack running from {self.settings.run_dir} uses the config folder {running}, "
                             f"not {self.settings.config_dir}")

    # ----------------------------------------------------------------- state

    def _gateway_pid(self) -> int | None:
        pid = self.rpc().supervisor.getProcessInfo("gateway").get("pid")
        return int(pid) if pid else None

    @property
    def socket_path(self) -> Path:
        return self.settings.run_dir / "supervisor.sock"

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def supervisord_pid(self) -> int | None:
        """The pid in supervisord.pid, if that process is alive and is a supervisord (not a reused pid)."""
        try:
            pid = int((self.settings.run_dir / "supervisord.pid").read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"supervisord" in command else None

    def is_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return str(self.rpc().supervisor.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Fault):
            return False

    def processes(self) -> list[dict[str, Any]]:
        info: list[dict[str, Any]] = self.rpc().supervisor.getAllProcessInfo()
        return info


# supervisord says this of every unix socket without a username, however private the socket.
# Ours is 0700 in a 0700 run folder, so the kernel already admits only the operator's uid,
# who could read any password file too (decision in the runbook, start-stop.md). The line
# stays in supervisord.log; only the terminal of `run` is spared it.
_NOT_NEWS = re.compile(rb"CRIT Server 'unix_http_server' running without any HTTP authentication checking")


def _relay_output(child: subprocess.Popen[bytes]) -> None:
    """Copy supervisord's console output to ours as it comes, minus the one line that is not news."""
    assert child.stdout is not None
    out: Any = sys.stdout.buffer
    for line in iter(child.stdout.readline, b""):
        if out is None or _NOT_NEWS.search(line):
            continue
        try:
            out.write(line)
            out.flush()
        except OSError:  # our reader went away (`run | head`): keep draining so supervisord never blocks
            out = None
    child.stdout.close()


def _term_with_parent() -> None:
    """In the forked child before exec: SIGTERM to supervisord if the launcher itself is killed."""
    with contextlib.suppress(OSError):
        prctl_pdeathsig(signal.SIGTERM)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host if host != "localhost" else "127.0.0.1", port)) == 0


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout_s: float) -> bool:
    """True once none of ``pids`` is alive (zombies count as gone); False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")

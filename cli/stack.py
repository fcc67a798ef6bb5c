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

import os
import shutil
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

from shared.config import ConfigError, ProvidersFile, load_client_registry, load_providers
from shared.files import FileWriteError, write_secret_file
from shared.link_keys import KeyFileError, ensure_link_key
from shared.settings import Settings
from shared.startup_checks import refusal_file
from shared.timeline import ENV_VAR as TIMELINE_VAR

__all__ = ["REPO_ROOT", "Stack", "StackError", "scrubbed_environment"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SUPERVISORD_CONF = REPO_ROOT / "supervisord.conf"
WORKER_PROGRAMS = ("openai", "anthropic", "lmstudio")

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
        PYTHONUNBUFFERED="1",
    )
    env.update(settings.link.to_env())
    env.update(settings.security.to_env())
    # Per-process log levels (LLMC_LOG_LEVEL_GATEWAY, LLMC_LOG_LEVEL_WORKER_OPENAI, ...) and
    # rotation sizes pass through as given; supervisord.conf reads the rotation pair.
    env.update({k: v for k, v in source.items() if k.startswith("LLMC_LOG_LEVEL_")})
    env.update({k: source[k] for k in ("LLMC_MANIFEST_PUBKEY", "LLMC_MANIFEST_FILE", TIMELINE_VAR) if k in source})
    # Span export (shared/otel.py): LLMC_OTEL_EXPORTER and the standard OTEL_* variables
    # (OTLP endpoint and headers, service name, resource, batch knobs) reach every process.
    env.update({k: v for k, v in source.items() if k.startswith(_OTEL_PREFIXES)})
    env["LLMC_LOG_MAX_BYTES"] = source.get("LLMC_LOG_MAX_BYTES", "10MB")
    env["LLMC_LOG_BACKUPS"] = source.get("LLMC_LOG_BACKUPS", "5")
    env["LLMC_EXTRA_WORKERS"] = "".join(f",{name}" for name in extra_workers(settings))
    return env


def extra_workers(settings: Settings) -> list[str]:
    """Configured providers beyond the three programs written in supervisord.conf."""
    try:
        providers = load_providers(settings.providers_file)
    except ConfigError:
        return []
    return [name for name in providers.providers if name not in WORKER_PROGRAMS]


def write_extra_worker_programs(settings: Settings) -> list[str]:
    """A program section per extra provider in RUN_DIR/workers.d, which supervisord.conf includes.

    Same settings as the written-out workers; the [group:workers] list picks the names up
    from LLMC_EXTRA_WORKERS, so `supervisorctl restart workers:NAME` works for them too.
    """
    folder = settings.run_dir / "workers.d"
    folder.mkdir(mode=0o700, exist_ok=True)
    for stale in folder.glob("*.conf"):
        stale.unlink()
    names = extra_workers(settings)
    for name in names:
        (folder / f"{name}.conf").write_text(_WORKER_PROGRAM.format(name=name))
    return names


_WORKER_PROGRAM = """[program:{name}]
command=%(ENV_LLMC_PYTHON)s -m workers {name}
directory=%(here)s
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


def hand_off_secrets(providers: ProvidersFile, settings: Settings, source: dict[str, str] | None = None) -> list[str]:
    """Write each env-referenced key to its worker's 0600 hand-off file. Returns the providers handed a key."""
    source = dict(os.environ) if source is None else source
    handed = []
    for name, config in providers.providers.items():
        target = settings.secrets_dir / name
        value = source.get(config.secret.env, "").strip() if config.secret and config.secret.env else ""
        if value:
            write_secret_file(target, value)
            handed.append(name)
        elif target.exists():
            target.unlink()  # a stale key from an earlier run must not be picked up
    return handed


@dataclass
class Stack:
    settings: Settings

    # ----------------------------------------------------------------- control

    def check_config(self) -> ProvidersFile:
        """Load both config files; raises ConfigError with the operator message."""
        providers = load_providers(self.settings.providers_file)
        load_client_registry(self.settings.registry_file)
        return providers

    def start(self, *, foreground: bool = False, environ: dict[str, str] | None = None) -> None:
        providers = self.check_config()
        if self.is_running():
            raise StackError(f"already running (supervisord socket {self.socket_path} answers)")
        if _port_in_use(self.settings.host, self.settings.port):
            raise StackError(f"port {self.settings.port} is in use by another process; choose another with --port")
        self.settings.ensure_run_dir()
        try:
            ensure_link_key(self.settings.link_key_file)
        except (KeyFileError, FileWriteError) as exc:
            raise StackError(str(exc)) from None
        hand_off_secrets(providers, self.settings, environ)
        write_extra_worker_programs(self.settings)
        env = scrubbed_environment(self.settings, environ)
        command = [sys.executable, "-m", "supervisor.supervisord", "-c", str(SUPERVISORD_CONF)]
        if foreground:
            os.execve(sys.executable, [*command, "-n"], env)  # noqa: S606 (signals go straight to supervisord)
        subprocess.run(command, env=env, check=True, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)

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

    def stop(self, timeout_s: float = 20.0) -> None:
        pid = self.supervisord_pid()
        if pid is None:
            return
        try:
            self.rpc().supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault):
            os.kill(pid, 15)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, 9)
        shutil.rmtree(self.settings.secrets_dir, ignore_errors=True)

    def restart_worker(self, name: str) -> str:
        """Restart ``gateway`` or one worker, named ``openai`` or ``workers:openai``; returns the name used."""
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
        """supervisord's name for ``name`` (either form); a wrong one lists the valid names."""
        running = {info["name"]: (f"{info['group']}:{info['name']}" if info["group"] != info["name"] else info["name"])
                   for info in rpc.getAllProcessInfo()}
        short = name.removeprefix("workers:")
        if short in running and name in (short, running[short]):
            return running[short]
        raise StackError(f"no process named {name!r}; valid names: {', '.join(sorted(running))} "
                         "(a worker may also be given as workers:NAME)")

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
        try:
            pid = int((self.settings.run_dir / "supervisord.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

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


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host if host != "localhost" else "127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Runtime settings every process reads from its environment.

The launcher (``llm-caller up``) sets these for supervisord, which hands them to each
program; a process started by hand reads the same names. Files (what to call, who may
call) live in the config folder; these say *where* things are and *how* to run.

    LLMC_CONFIG_DIR   folder with providers.json and client-registry.json   $XDG_CONFIG_HOME/llm-caller
    LLMC_RUN_DIR      sockets, pid file, secret hand-off files (0700)        $XDG_STATE_HOME/llm-caller/run
    LLMC_LOG_DIR      log files                                             $XDG_STATE_HOME/llm-caller/logs
    LLMC_HOST         gateway bind address                                  127.0.0.1
    LLMC_PORT         gateway port                                          8765
    LLMC_LOG_LEVEL    DEBUG, INFO, WARNING, ERROR                           INFO
    LLMC_HEARTBEAT_S  heartbeat interval on the worker link, seconds        0.5
    LLMC_LIVENESS     heartbeats missed before a peer counts as dead        4

The HTTP front end's security knobs (``SecuritySettings``; runbook/security-http.md):

    LLMC_LOCKOUT_THRESHOLD    auth failures within the window that block a source   10
    LLMC_LOCKOUT_WINDOW_S     the counting window, seconds                          60
    LLMC_LOCKOUT_BASE_S       first block, seconds; doubles on each repeat          30
    LLMC_LOCKOUT_MAX_S        longest block, seconds                                3600
    LLMC_MAX_BODY_BYTES       largest request body accepted (else 413)              4194304
    LLMC_SESSION_KEY_FILE     session-token signing key (hex, 0600)                 $LLMC_RUN_DIR/session.key
    LLMC_SESSION_MAX_TTL_S    longest session token POST /session hands out         3600
    LLMC_ALLOW_NON_LOOPBACK   1 lets the gateway bind a non-loopback LLMC_HOST      0

The HTTP front door's limits (``HttpLimits``, part of ``SecuritySettings``; gateway/front_door.py):

    LLMC_MAX_URL_BYTES          longest request target (path and query; else 414)   8192
    LLMC_MAX_HEADERS            most header fields in one request (else 431)        100
    LLMC_MAX_HEADER_BYTES       request line plus headers, in all (else 431)        32768
    LLMC_HEADER_TIMEOUT_S       time for a complete request head, seconds           10
    LLMC_BODY_TIMEOUT_S         time for the whole body after the head, seconds     30
    LLMC_KEEPALIVE_TIMEOUT_S    whole seconds an idle keep-alive connection stays   5
    LLMC_MAX_CONNECTIONS        open HTTP connections (also kept below the open-    2048
                                file limit); new ones past it get 503 and close

The worker link (``LinkSettings``; decision D11, shared/protocol.py):

    LLMC_LINK_KEY_FILE     HMAC link key (hex, 0600), read by gateway and workers   $LLMC_RUN_DIR/link.key
    LLMC_WORKER_ENDPOINT   ipc://PATH, or tcp://HOST:PORT for workers on            ipc://$LLMC_RUN_DIR/workers.sock
                           other hosts (then CurveZMQ is mandatory)
    LLMC_CURVE_DIR         CurveZMQ certificates (shared/link_keys.py)              $LLMC_RUN_DIR/curve

Where things live by default (README "Where things live"): outside any source checkout,
in the operator's XDG folders. ``$XDG_CONFIG_HOME`` defaults to ``~/.config`` and
``$XDG_STATE_HOME`` to ``~/.local/state``. The run folder is ``$XDG_STATE_HOME/llm-caller/run``,
not ``$XDG_RUNTIME_DIR``: that variable is missing where an MCP client, cron or sudo starts
a command (which would then look in another folder than ``up`` used), and the folder is
removed at the last logout, taking a detached stack's sockets with it. A run folder named
explicitly keeps its logs in ``RUN_DIR/logs``; the default one's are in
``$XDG_STATE_HOME/llm-caller/logs``.

``Settings.resolve`` is the one place the CLI turns options into settings, per setting:
an explicit option, else the ``LLMC_*`` variable, else the record the running stack left
in its run folder (``stack.json``, written by ``up``, removed by ``down``), else the
default. The run folder itself comes from the option, the variable or the default only,
since it is where the record is looked for.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["RECORD_NAME", "HttpLimits", "LinkSettings", "SecuritySettings", "Settings", "StoreSettings",
           "default_config_dir", "default_keys_dir", "default_run_dir", "default_state_dir", "read_stack_record"]

APP_NAME = "llm-caller"
# The running stack's record in its run folder: where a later command finds port, config and logs.
RECORD_NAME = "stack.json"
# The record's keys and the LLMC_* variable each one stands for.
_RECORDED = {"config_dir": "LLMC_CONFIG_DIR", "log_dir": "LLMC_LOG_DIR", "host": "LLMC_HOST", "port": "LLMC_PORT"}

# Unix socket paths are limited to ~107 bytes; stay well inside for the socket name.
_MAX_SOCKET_PATH = 100
_TRUE = frozenset({"1", "true", "yes", "on"})


def _xdg(env: Mapping[str, str], name: str, fallback: str) -> Path:
    """An XDG base folder: the variable when it is an absolute path (the spec ignores others), else ~/fallback."""
    raw = env.get(name, "").strip()
    if raw and Path(raw).is_absolute():
        return Path(raw)
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / fallback


def default_config_dir(env: Mapping[str, str]) -> Path:
    """$XDG_CONFIG_HOME/llm-caller, else ~/.config/llm-caller."""
    return _xdg(env, "XDG_CONFIG_HOME", ".config") / APP_NAME


def default_state_dir(env: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/llm-caller, else ~/.local/state/llm-caller: the run folder, logs and keys."""
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / APP_NAME


def default_keys_dir(env: Mapping[str, str]) -> Path:
    """STATE/keys: kept across runs (unlike the run folder) and apart from the config (which gets shared)."""
    return default_state_dir(env) / "keys"


def default_run_dir(env: Mapping[str, str]) -> Path:
    """STATE/run: the same folder for every command of this user, whatever its environment.

    Not $XDG_RUNTIME_DIR, which commands started by an MCP client, cron or sudo often lack
    (they would look in another folder than ``up`` used), and which is removed at the last
    logout while a detached stack may still be running from it.
    """
    return default_state_dir(env) / "run"


def read_stack_record(run_dir: Path) -> dict[str, str]:
    """What the stack running from ``run_dir`` recorded, as LLMC_* variables; empty when there is none.

    A record that is unreadable, malformed or not private to this user is ignored: it is
    only a memory of options, and the defaults still apply.
    """
    path = run_dir / RECORD_NAME
    try:
        info = path.lstat()
        if not path.is_file() or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return {}
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    wanted = {key: int if key == "port" else str for key in _RECORDED}
    return {var: str(data[key]) for key, var in _RECORDED.items()
            if type(data.get(key)) is wanted[key] and str(data[key]).strip()}


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number from ``env``; a bad value names the variable, since it stops start-up."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a number greater than 0")
    return value


def _not_negative(env: Mapping[str, str], name: str, default: float) -> float:
    """A number >= 0 from ``env`` (0 switches the feature off); a bad value names the variable."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a number of 0 or more")
    return value


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    value = _positive(env, name, default)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number")
    return int(value)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Limits of the HTTP front door: request head size, slow and idle connections, open connections."""

    max_url_bytes: int = 8192
    max_headers: int = 100
    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: int = 5
    max_connections: int = 2048

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpLimits:
        default = cls()
        return cls(
            max_url_bytes=_whole(env, "LLMC_MAX_URL_BYTES", default.max_url_bytes),
            max_headers=_whole(env, "LLMC_MAX_HEADERS", default.max_headers),
            max_header_bytes=_whole(env, "LLMC_MAX_HEADER_BYTES", default.max_header_bytes),
            header_timeout_s=_positive(env, "LLMC_HEADER_TIMEOUT_S", default.header_timeout_s),
            body_timeout_s=_positive(env, "LLMC_BODY_TIMEOUT_S", default.body_timeout_s),
            keepalive_timeout_s=_whole(env, "LLMC_KEEPALIVE_TIMEOUT_S", default.keepalive_timeout_s),
            max_connections=_whole(env, "LLMC_MAX_CONNECTIONS", default.max_connections),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "LLMC_MAX_URL_BYTES": str(self.max_url_bytes),
            "LLMC_MAX_HEADERS": str(self.max_headers),
            "LLMC_MAX_HEADER_BYTES": str(self.max_header_bytes),
            "LLMC_HEADER_TIMEOUT_S": str(self.header_timeout_s),
            "LLMC_BODY_TIMEOUT_S": str(self.body_timeout_s),
            "LLMC_KEEPALIVE_TIMEOUT_S": str(self.keepalive_timeout_s),
            "LLMC_MAX_CONNECTIONS": str(self.max_connections),
        }


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Lockout, body size, session tokens, bind policy and HTTP limits of the gateway's front end."""

    lockout_threshold: int = 10
    lockout_window_s: float = 60.0
    lockout_base_s: float = 30.0
    lockout_max_s: float = 3600.0
    max_body_bytes: int = 4 * 1024 * 1024
    # None: $LLMC_RUN_DIR/session.key, which the gateway creates (0600) when it is missing.
    session_key_file: Path | None = None
    session_max_ttl_s: int = 3600
    allow_non_loopback: bool = False
    http: HttpLimits = field(default_factory=HttpLimits)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecuritySettings:
        key_file = env.get("LLMC_SESSION_KEY_FILE", "").strip()
        return cls(
            lockout_threshold=_whole(env, "LLMC_LOCKOUT_THRESHOLD", 10),
            lockout_window_s=_positive(env, "LLMC_LOCKOUT_WINDOW_S", 60.0),
            lockout_base_s=_positive(env, "LLMC_LOCKOUT_BASE_S", 30.0),
            lockout_max_s=_positive(env, "LLMC_LOCKOUT_MAX_S", 3600.0),
            max_body_bytes=_whole(env, "LLMC_MAX_BODY_BYTES", 4 * 1024 * 1024),
            session_key_file=Path(key_file).absolute() if key_file else None,
            session_max_ttl_s=_whole(env, "LLMC_SESSION_MAX_TTL_S", 3600),
            allow_non_loopback=env.get("LLMC_ALLOW_NON_LOOPBACK", "").strip().lower() in _TRUE,
            http=HttpLimits.from_env(env),
        )

    def to_env(self) -> dict[str, str]:
        """The same settings as LLMC_* variables, for the launcher to hand to supervisord."""
        env = {
            "LLMC_LOCKOUT_THRESHOLD": str(self.lockout_threshold),
            "LLMC_LOCKOUT_WINDOW_S": str(self.lockout_window_s),
            "LLMC_LOCKOUT_BASE_S": str(self.lockout_base_s),
            "LLMC_LOCKOUT_MAX_S": str(self.lockout_max_s),
            "LLMC_MAX_BODY_BYTES": str(self.max_body_bytes),
            "LLMC_SESSION_MAX_TTL_S": str(self.session_max_ttl_s),
            "LLMC_ALLOW_NON_LOOPBACK": "1" if self.allow_non_loopback else "0",
            **self.http.to_env(),
        }
        if self.session_key_file is not None:
            env["LLMC_SESSION_KEY_FILE"] = str(self.session_key_file)
        return env


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where MCP tasks and conversation threads are kept, and the limits on both.

    ``url`` is ``sqlite:///ABSOLUTE/PATH``, ``postgresql://USER@HOST:PORT/DB`` or ``memory:``
    (tests); None means the SQLite default beside the logs (``Settings.store_url``). A
    PostgreSQL password is never part of the URL (it would show in ``ps`` and logs): it is
    read from ``password_file`` (0600).
    """

    url: str | None = None
    password_file: Path | None = None
    # A call from a client that opted in to tasks becomes a task when it may run this long
    # (its timeout or expected length), or when the client asks for one.
    task_after_s: float = 30.0
    # Such a call is first awaited this long; one that ends in time is answered plain, with
    # no task (the "immediate result"); 0 makes every such call a task at once.
    task_inline_s: float = 5.0
    task_ttl_s: int = 3600
    task_poll_ms: int = 1000
    # A working task whose gateway has not renewed its lease for this long is failed.
    task_lease_s: float = 10.0
    thread_max_turns: int = 50
    thread_max_tokens: int = 100_000
    thread_ttl_s: int = 7 * 24 * 3600
    # The usage ledger (gateway.ledger): rows gathered for this long (or this many) go in one
    # transaction; a crash loses at most the rows of the last window. Rows older than
    # ledger_keep_days are folded into per-day sums and deleted.
    ledger_window_ms: int = 200
    ledger_batch_rows: int = 1000
    ledger_keep_days: int = 90
    # How often budgets re-read every gateway's spending from the store (gateway.budgets).
    budget_refresh_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StoreSettings:
        default = cls()
        url = env.get("LLMC_STORE_URL", "").strip() or None
        password_file = env.get("LLMC_STORE_PASSWORD_FILE", "").strip()
        return cls(
            url=url,
            password_file=Path(password_file).absolute() if password_file else None,
            task_after_s=_positive(env, "LLMC_TASK_AFTER_S", default.task_after_s),
            task_inline_s=_not_negative(env, "LLMC_TASK_INLINE_S", default.task_inline_s),
            task_ttl_s=_whole(env, "LLMC_TASK_TTL_S", default.task_ttl_s),
            task_poll_ms=_whole(env, "LLMC_TASK_POLL_MS", default.task_poll_ms),
            task_lease_s=_positive(env, "LLMC_TASK_LEASE_S", default.task_lease_s),
            thread_max_turns=_whole(env, "LLMC_THREAD_MAX_TURNS", default.thread_max_turns),
            thread_max_tokens=_whole(env, "LLMC_THREAD_MAX_TOKENS", default.thread_max_tokens),
            thread_ttl_s=_whole(env, "LLMC_THREAD_TTL_S", default.thread_ttl_s),
            ledger_window_ms=_whole(env, "LLMC_LEDGER_WINDOW_MS", default.ledger_window_ms),
            ledger_batch_rows=_whole(env, "LLMC_LEDGER_BATCH_ROWS", default.ledger_batch_rows),
            ledger_keep_days=_whole(env, "LLMC_LEDGER_KEEP_DAYS", default.ledger_keep_days),
            budget_refresh_s=_positive(env, "LLMC_BUDGET_REFRESH_S", default.budget_refresh_s),
        )

    def to_env(self) -> dict[str, str]:
        """The same settings as LLMC_* variables, for the launcher to hand to supervisord."""
        env = {
            "LLMC_TASK_AFTER_S": str(self.task_after_s),
            "LLMC_TASK_INLINE_S": str(self.task_inline_s),
            "LLMC_TASK_TTL_S": str(self.task_ttl_s),
            "LLMC_TASK_POLL_MS": str(self.task_poll_ms),
            "LLMC_TASK_LEASE_S": str(self.task_lease_s),
            "LLMC_THREAD_MAX_TURNS": str(self.thread_max_turns),
            "LLMC_THREAD_MAX_TOKENS": str(self.thread_max_tokens),
            "LLMC_THREAD_TTL_S": str(self.thread_ttl_s),
            "LLMC_LEDGER_WINDOW_MS": str(self.ledger_window_ms),
            "LLMC_LEDGER_BATCH_ROWS": str(self.ledger_batch_rows),
            "LLMC_LEDGER_KEEP_DAYS": str(self.ledger_keep_days),
            "LLMC_BUDGET_REFRESH_S": str(self.budget_refresh_s),
        }
        if self.url is not None:
            env["LLMC_STORE_URL"] = self.url
        if self.password_file is not None:
            env["LLMC_STORE_PASSWORD_FILE"] = str(self.password_file)
        return env


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Where the worker link's keys are and how it is reached; None means the default under run_dir."""

    link_key_file: Path | None = None
    worker_endpoint: str | None = None
    curve_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LinkSettings:
        def path(name: str) -> Path | None:
            raw = env.get(name, "").strip()
            return Path(raw).absolute() if raw else None

        endpoint = env.get("LLMC_WORKER_ENDPOINT", "").strip() or None
        if endpoint is not None:
            _check_endpoint(endpoint)
        return cls(link_key_file=path("LLMC_LINK_KEY_FILE"), worker_endpoint=endpoint,
                   curve_dir=path("LLMC_CURVE_DIR"))

    def to_env(self) -> dict[str, str]:
        """The settings an operator chose, as LLMC_* variables; defaults stay implicit."""
        env = {}
        if self.link_key_file is not None:
            env["LLMC_LINK_KEY_FILE"] = str(self.link_key_file)
        if self.worker_endpoint is not None:
            env["LLMC_WORKER_ENDPOINT"] = self.worker_endpoint
        if self.curve_dir is not None:
            env["LLMC_CURVE_DIR"] = str(self.curve_dir)
        return env


def _store(env: Mapping[str, str], named_run_dir: Path | None) -> StoreSettings:
    store = StoreSettings.from_env(env)
    if store.url is None and named_run_dir is not None:
        return replace(store, url=f"sqlite:///{named_run_dir / 'store.db'}")
    return store


def _check_endpoint(endpoint: str) -> None:
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://"):
        return
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    if endpoint.startswith("tcp://") and host and port.isdigit() and 0 < int(port) < 65536:
        return
    raise ValueError(f"LLMC_WORKER_ENDPOINT={endpoint!r} is not ipc://PATH or tcp://HOST:PORT")


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"LLMC_PORT={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"LLMC_PORT={raw!r} is not a port number (1-65535)")
    return port


@dataclass(frozen=True, slots=True)
class Settings:
    config_dir: Path
    run_dir: Path
    log_dir: Path
    host: str = "127.0.0.1"
    port: int = 8765
    log_level: str = "INFO"
    heartbeat_s: float = 0.5
    liveness: int = 4
    security: SecuritySettings = field(default_factory=SecuritySettings)
    link: LinkSettings = field(default_factory=LinkSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        named_run_dir = env.get("LLMC_RUN_DIR", "").strip()
        run_dir = Path(named_run_dir).absolute() if named_run_dir else default_run_dir(env)
        # A run folder someone named keeps its logs inside (as before); the default one's are
        # beside it in the state folder, where `llm-caller status` and the runbook point.
        log_default = run_dir / "logs" if named_run_dir else default_state_dir(env) / "logs"
        config_dir = env.get("LLMC_CONFIG_DIR", "").strip()
        log_dir = env.get("LLMC_LOG_DIR", "").strip()
        return cls(
            config_dir=Path(config_dir).absolute() if config_dir else default_config_dir(env),
            run_dir=run_dir,
            log_dir=Path(log_dir).absolute() if log_dir else log_default,
            host=env.get("LLMC_HOST", "127.0.0.1"),
            port=_port(env.get("LLMC_PORT", "8765")),
            log_level=env.get("LLMC_LOG_LEVEL", "INFO").upper(),
            heartbeat_s=float(env.get("LLMC_HEARTBEAT_S", "0.5")),
            liveness=int(env.get("LLMC_LIVENESS", "4")),
            security=SecuritySettings.from_env(env),
            link=LinkSettings.from_env(env),
            store=_store(env, Path(named_run_dir).absolute() if named_run_dir else None),
        )

    @classmethod
    def resolve(cls, options: Mapping[str, str | int | Path | None], env: Mapping[str, str] | None = None, *,
                remembered: bool = True) -> Settings:
        """Settings for a CLI command: option > environment > the running stack's record > default.

        ``options`` maps LLMC_* names to what the operator passed (None: not given). With
        ``remembered`` (every command but ``up``/``run``, which start a new stack), what the
        stack running from the run folder recorded fills in what neither gave.
        """
        env = os.environ if env is None else env
        given = {name: str(value) for name, value in options.items() if value is not None and str(value) != ""}
        merged = {k: v for k, v in env.items() if str(v).strip() != ""}
        if "LLMC_RUN_DIR" in given:
            merged["LLMC_RUN_DIR"] = given["LLMC_RUN_DIR"]
        if remembered:
            run_dir = cls.from_env(merged).run_dir
            for name, value in read_stack_record(run_dir).items():
                merged.setdefault(name, value)
        merged.update(given)
        return cls.from_env(merged)

    @property
    def record_file(self) -> Path:
        """The running stack's record: its port, host, config and log folders (0600)."""
        return self.run_dir / RECORD_NAME

    def stack_record(self) -> dict[str, str | int]:
        """What ``up`` writes to ``record_file`` for later commands to find this stack."""
        return {"config_dir": str(self.config_dir), "log_dir": str(self.log_dir), "host": self.host,
                "port": self.port}

    @property
    def providers_file(self) -> Path:
        return self.config_dir / "providers.json"

    @property
    def registry_file(self) -> Path:
        return self.config_dir / "client-registry.json"

    @property
    def worker_endpoint(self) -> str:
        if self.link.worker_endpoint is not None:
            return self.link.worker_endpoint
        path = self.run_dir / "workers.sock"
        if len(str(path)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"run folder path too long for a unix socket ({len(str(path))} bytes); "
                "set LLMC_RUN_DIR to a shorter path"
            )
        return f"ipc://{path}"

    @property
    def link_uses_curve(self) -> bool:
        """A tcp worker endpoint may reach other hosts, so it is always CurveZMQ (D11)."""
        return self.worker_endpoint.startswith("tcp://")

    @property
    def link_key_file(self) -> Path:
        return self.link.link_key_file or self.run_dir / "link.key"

    @property
    def curve_dir(self) -> Path:
        return self.link.curve_dir or self.run_dir / "curve"

    @property
    def audit_file(self) -> Path:
        """Append-only JSON lines: auth failures, config changes, token issue/rotate, worker deaths."""
        return self.log_dir / "audit.jsonl"

    @property
    def session_key_file(self) -> Path:
        return self.security.session_key_file or self.run_dir / "session.key"

    @property
    def store_url(self) -> str:
        """The store to open: the operator's URL, else SQLite in the state folder (beside ``run/``).

        ``from_env`` fills the URL in for a run folder someone named (tests, sandboxes): the
        store goes inside it, so that each sandbox has its own store, as it has its own logs.
        """
        return self.store.url or f"sqlite:///{self.run_dir.parent / 'store.db'}"

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "secrets"

    def ensure_run_dir(self) -> None:
        """Create the run folder private to this user: sockets and hand-off files live here."""
        for folder in (self.run_dir, self.secrets_dir):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        self.log_dir.mkdir(parents=True, exist_ok=True)

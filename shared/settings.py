"""Runtime settings every process reads from its environment.

The launcher (``llm-caller up``) sets these for supervisord, which hands them to each
program; a process started by hand reads the same names. Files (what to call, who may
call) live in the config folder; these say *where* things are and *how* to run.

    LLMC_CONFIG_DIR   folder with providers.json and client-registry.json   ./config
    LLMC_RUN_DIR      sockets, pid file, secret hand-off files (0700)        ./run
    LLMC_LOG_DIR      log files                                             $LLMC_RUN_DIR/logs
    LLMC_HOST         gateway bind address                                  127.0.0.1
    LLMC_PORT         gateway port                                          8765
    LLMC_LOG_LEVEL    DEBUG, INFO, WARNING, ERROR                           INFO
    LLMC_HEARTBEAT_S  heartbeat interval on the worker link, seconds        0.5
    LLMC_LIVENESS     heartbeats missed before a peer counts as dead        4
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]

# Unix socket paths are limited to ~107 bytes; stay well inside for the socket name.
_MAX_SOCKET_PATH = 100


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        run_dir = Path(env.get("LLMC_RUN_DIR", "run")).absolute()
        return cls(
            config_dir=Path(env.get("LLMC_CONFIG_DIR", "config")).absolute(),
            run_dir=run_dir,
            log_dir=Path(env.get("LLMC_LOG_DIR", str(run_dir / "logs"))).absolute(),
            host=env.get("LLMC_HOST", "127.0.0.1"),
            port=int(env.get("LLMC_PORT", "8765")),
            log_level=env.get("LLMC_LOG_LEVEL", "INFO").upper(),
            heartbeat_s=float(env.get("LLMC_HEARTBEAT_S", "0.5")),
            liveness=int(env.get("LLMC_LIVENESS", "4")),
        )

    @property
    def providers_file(self) -> Path:
        return self.config_dir / "providers.json"

    @property
    def registry_file(self) -> Path:
        return self.config_dir / "client-registry.json"

    @property
    def worker_endpoint(self) -> str:
        path = self.run_dir / "workers.sock"
        if len(str(path)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"run folder path too long for a unix socket ({len(str(path))} bytes); "
                "set LLMC_RUN_DIR to a shorter path"
            )
        return f"ipc://{path}"

    @property
    def audit_file(self) -> Path:
        """Append-only JSON lines: auth failures, config changes, token issue/rotate, worker deaths."""
        return self.log_dir / "audit.jsonl"

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "secrets"

    def ensure_run_dir(self) -> None:
        """Create the run folder private to this user: sockets and hand-off files live here."""
        for folder in (self.run_dir, self.secrets_dir):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        self.log_dir.mkdir(parents=True, exist_ok=True)

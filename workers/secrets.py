"""Where a worker gets its provider key. Only the worker for that provider ever reads it.

Backends, chosen by the provider's ``secret`` reference in providers.json:

* ``{"env": "NAME"}``: the variable in the worker's own environment; when the stack runs
  under supervisord the launcher scrubs the environment and instead hands the value over
  in ``$LLMC_RUN_DIR/secrets/<provider>`` (0600), which this module reads as a fallback.
* ``{"file": "/path"}``: a file readable by the owner only.

A missing key is not an error here: the worker reports itself *unconfigured*. Log lines
never name the variable or the file, and never show any part of a key.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.logs import log_event
from workers.config_record import SecretRecord

__all__ = ["EnvSecret", "FileSecret", "SecretSource", "resolve_secret", "secret_source"]

log = logging.getLogger("workers.secrets")


class SecretSource(Protocol):
    def read(self) -> str | None:
        """The secret, or None when it is not available."""


@dataclass(frozen=True)
class EnvSecret:
    variable: str
    handoff_file: Path | None = None

    def read(self) -> str | None:
        value = os.environ.get(self.variable, "").strip()
        if value:
            return value
        if self.handoff_file is not None:
            return FileSecret(self.handoff_file).read()
        return None


@dataclass(frozen=True)
class FileSecret:
    path: Path

    def read(self) -> str | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Refuse rather than warn: a key file others can read is already a leak.
            log_event(log, "secret_file_too_open", level=logging.ERROR, fix="chmod 600 the key file")
            return None
        try:
            value = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value or None


def secret_source(provider: str, ref: SecretRecord | None, secrets_dir: Path) -> SecretSource | None:
    if ref is None:
        return None
    if ref.env is not None:
        return EnvSecret(ref.env, handoff_file=secrets_dir / provider)
    assert ref.file is not None
    return FileSecret(Path(ref.file).expanduser())


def resolve_secret(provider: str, ref: SecretRecord | None, secrets_dir: Path) -> str | None:
    source = secret_source(provider, ref, secrets_dir)
    if source is None:
        return None
    value = source.read()
    if value is None:
        log_event(log, "provider_key_missing", level=logging.WARNING, provider=provider, status="unconfigured")
    return value

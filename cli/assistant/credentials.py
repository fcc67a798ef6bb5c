"""Provider keys: taking them in without echo, and keeping them out of every config file.

A key typed into the assistant goes to ``CONFIG_DIR/secrets/<provider>.key`` (0600, in a
0700 folder) and providers.json only gets ``{"secret": {"file": "<that path>"}}``. The
folder also gets a ``.gitignore`` of ``*``, because config folders tend to live in
repositories. Keys are read from stdin (never argv, which ``ps`` and shell history
show) and are held in ``PendingSecret``, whose repr never shows the value.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cli.options import CommandRefused
from shared.files import FileWriteError, write_bytes_atomic, write_secret_file

__all__ = ["PendingSecret", "check_key", "key_file_for", "read_key_file", "read_key_from_stdin", "stage"]

SECRETS_FOLDER = "secrets"
_GITIGNORE = b"# provider keys: never commit these\n*\n"


@dataclass(frozen=True)
class PendingSecret:
    """A key waiting to be written once the change is confirmed."""

    path: Path
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"key for {self.path.name} ([secret])"


def key_file_for(config_dir: Path, provider: str) -> Path:
    return config_dir / SECRETS_FOLDER / f"{provider}.key"


def check_key(value: str) -> str:
    """The key without surrounding whitespace; refuse what cannot be a key (the value is never quoted)."""
    key = value.strip()
    if not key:
        raise CommandRefused("no key given; fix: paste the key alone on one line")
    if re.search(r"\s", key):
        raise CommandRefused("the key contains spaces or line breaks; fix: paste the key alone on one line")
    return key


def read_key_from_stdin(stream: TextIO | None = None) -> str:
    """One line from stdin; on a terminal, a hidden prompt instead (nothing echoed, nothing in history)."""
    stream = sys.stdin if stream is None else stream
    if stream.isatty():
        return check_key(getpass.getpass("API key (input hidden): "))
    return check_key(stream.readline())


def read_key_file(path: Path) -> str | None:
    """The key in an existing key file, for probing an update; None when unreadable."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _private_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask, and the folder may predate us
    except OSError as exc:
        raise FileWriteError(f"cannot create the key folder {folder} ({exc.strerror}); nothing was written; "
                             "fix: check the config folder's permissions") from None
    ignore = folder / ".gitignore"
    if not ignore.exists():
        write_bytes_atomic(ignore, _GITIGNORE, mode=0o600)


def stage(pending: PendingSecret) -> Callable[[], None]:
    """Write the key file; return an undo that puts back what was there (for a failed config write)."""
    _private_folder(pending.path.parent)
    try:
        previous: bytes | None = pending.path.read_bytes()
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        raise FileWriteError(f"cannot read {pending.path} ({exc.strerror}); nothing was written") from None
    write_secret_file(pending.path, pending.value)

    def undo() -> None:
        with contextlib.suppress(OSError, FileWriteError):
            if previous is None:
                os.unlink(pending.path)
            else:
                write_secret_file(pending.path, previous)

    return undo

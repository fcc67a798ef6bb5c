"""A miniature installation to sign, and signing keys as `keys generate` leaves them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from shared.manifest import new_signing_keypair

Run = Callable[..., tuple[int, str, str]]  # `llm-caller ARGS...` in-process: (exit code, stdout, stderr)

# A miniature installation: enough of every covered and uncovered kind of file.
TREE = {
    "cli/__init__.py": "",
    "cli/main.py": "print('cli')\n",
    "gateway/__init__.py": "",
    "gateway/app.py": "APP = 1\n",
    "shared/__init__.py": "",
    "shared/util/helpers.py": "def helper() -> int:\n    return 1\n",
    "workers/__init__.py": "",
    "workers/runtime.py": "RUNTIME = 1\n",
    "workers/notes.txt": "not python, but in a code folder: covered\n",
    "emulators/__init__.py": "",
    "emulators/server.py": "EMULATOR = 1\n",
    "tests/test_x.py": "def test_x() -> None: ...\n",
    "pyproject.toml": "[project]\nname = 'x'\n",
    "supervisord.conf": "[supervisord]\n",
    "config/providers.json": '{"providers": {}}\n',
    "config/client-registry.json": '{"clients": {}}\n',
}

COVERED = sorted([
    "cli/__init__.py", "cli/main.py", "gateway/__init__.py", "gateway/app.py", "shared/__init__.py",
    "shared/util/helpers.py", "workers/__init__.py", "workers/notes.txt", "workers/runtime.py", "pyproject.toml",
    "supervisord.conf", "config/providers.json",
])


def bytecode_name(source: str) -> str:
    """Where the import system caches ``source`` (``gateway/app.py`` -> ``gateway/__pycache__/app.cpython-311.pyc``)."""
    return PurePosixPath(importlib.util.cache_from_source(source)).as_posix()


# What a signed manifest lists: signing compiles every module of the code folders first.
SIGNED = sorted(COVERED + [bytecode_name(name) for name in COVERED
                           if name.endswith(".py") and name.split("/")[0] in ("cli", "gateway", "shared", "workers")])


def write_keypair(folder: Path, stem: str = "manifest") -> tuple[Path, Path]:
    """A signing keypair as `keys generate --kind manifest` would leave it (private 0600)."""
    folder.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = new_signing_keypair()
    private, public = folder / f"{stem}.key.pem", folder / f"{stem}.pub.pem"
    private.write_bytes(private_pem)
    private.chmod(0o600)
    public.write_bytes(public_pem)
    return private, public

"""The worker link's key material on disk: the shared HMAC link key and CurveZMQ certificates.

Link key: 32 random bytes as 64 hex characters in a 0600 file (what ``llm-caller keys
generate --kind link`` writes), at ``$LLMC_LINK_KEY_FILE`` (default
``$LLMC_RUN_DIR/link.key``). ``llm-caller up`` creates it when it is missing; the gateway
and the workers only read it and refuse to start if it is missing or open to others.

CurveZMQ (only for a ``tcp://`` worker endpoint), in ``$LLMC_CURVE_DIR``::

    gateway.key              gateway public certificate (every worker host needs it)
    gateway.key_secret       gateway secret certificate, 0600 (gateway host only)
    workers/<name>.key       public certificate of the worker allowed to be <name>
    workers/<name>.key_secret  that worker's secret certificate, 0600 (its host only)

The files are ZeroMQ certificates, as ``llm-caller keys generate --kind curve [--name
NAME] --out DIR`` writes them (the ``public-key`` / ``secret-key`` lines, z85). The
gateway trusts exactly the keys under ``workers/``, each as the provider its file is
named after; that name becomes the ZAP User-Id every message from that key carries.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zmq.utils import z85

from shared.files import write_secret_file
from shared.link_auth import LINK_KEY_BYTES, KeyFileError, load_link_key, read_private_file
from shared.names import NAME_PATTERN  # the one definition of a provider name

__all__ = [
    "CurveClientKeys",
    "CurveServerKeys",
    "KeyFileError",
    "LinkSetupError",
    "ensure_link_key",
    "load_curve_client",
    "load_curve_server",
    "load_link_key",
    "read_link_key",
]


class LinkSetupError(Exception):
    """The worker link cannot be set up safely (not a key problem); ``str()`` is the operator message."""


_KEY_LINE = re.compile(rb'^\s*(public|secret)-key\s*=\s*"([^"]{40})"\s*$', re.MULTILINE)
_MAX_CERT_BYTES = 4096
_NAME = re.compile(NAME_PATTERN)


def ensure_link_key(path: Path) -> bool:
    """Create the link key (0600, its folder 0700 when new) unless it exists; check it either way.

    Returns True when a key was created. An existing key is never replaced: workers on
    other hosts hold copies of it.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        for folder in reversed([p for p in (path.parent, *path.parent.parents) if not p.exists()]):
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode passes through the umask; state it outright
        write_secret_file(path, os.urandom(LINK_KEY_BYTES).hex() + "\n")
        load_link_key(path)
        return True
    load_link_key(path)
    return False


def read_link_key(path: Path) -> bytes:
    """The link key for a gateway or worker process, which never creates one itself."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise KeyFileError(f"link key file {path} not found; fix: start the stack with `llm-caller up` (it "
                           "creates one), or create it with `llm-caller keys generate --kind link` and set "
                           "LLMC_LINK_KEY_FILE to it")
    return load_link_key(path)


@dataclass(frozen=True, slots=True)
class CurveServerKeys:
    """The gateway's keypair and the worker keys it accepts (z85 public key -> provider name)."""

    public: bytes
    secret: bytes = field(repr=False)
    workers: Mapping[bytes, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CurveClientKeys:
    """One worker's keypair and the gateway public key it insists on."""

    public: bytes
    secret: bytes = field(repr=False)
    server_public: bytes


def load_curve_server(folder: Path) -> CurveServerKeys:
    folder = Path(folder)
    public, secret = _secret_certificate(folder / "gateway.key_secret")
    workers: dict[bytes, str] = {}
    worker_dir = folder / "workers"
    for cert in sorted(worker_dir.glob("*.key")) if worker_dir.is_dir() else []:
        name = cert.name.removesuffix(".key")
        if not _NAME.fullmatch(name):
            raise KeyFileError(f"CURVE certificate {cert}: {name!r} is not a provider name; fix: rename it "
                               "to <provider>.key")
        key = _public_certificate(cert)
        if key in workers:
            raise KeyFileError(f"CURVE certificates {worker_dir}/{workers[key]}.key and {cert} hold the same "
                               "key; fix: give each worker its own keypair")
        workers[key] = name
    if not workers:
        raise KeyFileError(f"no worker certificates in {worker_dir}; fix: `llm-caller keys generate --kind curve "
                           f"--name PROVIDER --out {worker_dir}` for each worker")
    return CurveServerKeys(public, secret, workers)


def load_curve_client(folder: Path, name: str) -> CurveClientKeys:
    folder = Path(folder)
    public, secret = _secret_certificate(folder / "workers" / f"{name}.key_secret")
    return CurveClientKeys(public, secret, _public_certificate(folder / "gateway.key"))


def _secret_certificate(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a secret certificate, refused unless it is private (0600)."""
    keys = _parse(read_private_file(path, "CURVE secret certificate"), path)
    if "secret" not in keys or "public" not in keys:
        raise KeyFileError(f"CURVE secret certificate {path} lacks a public-key or secret-key line; fix: "
                           "regenerate it with `llm-caller keys generate --kind curve`")
    return keys["public"], keys["secret"]


def _public_certificate(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CERT_BYTES + 1)
    except FileNotFoundError:
        raise KeyFileError(f"CURVE certificate {path} not found; fix: copy it from where the keys were "
                           "generated (`llm-caller keys generate --kind curve`)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read CURVE certificate {path} ({exc.strerror})") from None
    keys = _parse(data, path)
    if "public" not in keys:
        raise KeyFileError(f"CURVE certificate {path} has no public-key line")
    return keys["public"]


def _parse(data: bytes, path: Path) -> dict[str, bytes]:
    if len(data) > _MAX_CERT_BYTES:
        raise KeyFileError(f"{path} is too large to be a CURVE certificate")
    keys: dict[str, bytes] = {}
    for match in _KEY_LINE.finditer(data):
        kind, value = match.group(1).decode(), match.group(2)
        try:
            valid = len(z85.decode(value)) == 32
        except (ValueError, KeyError):
            valid = False
        if not valid:
            # The message names the line, never the text: it may be a secret.
            raise KeyFileError(f"{path}: the {kind}-key line is not a z85 CURVE key")
        keys[kind] = value
    return keys

"""Signed manifest of the installed code and configuration: tamper evidence for an installation.

``llm-caller manifest sign`` hashes every covered file (SHA-256) and signs the list with
an Ed25519 key kept away from the host; ``manifest verify`` (or ``verify_manifest`` at
process start) recomputes the hashes and names each file that changed, went missing or
appeared.

What is covered, as paths relative to the code root (``/`` separators, sorted):

* every file of any kind under ``cli/``, ``gateway/``, ``harness/``, ``shared/``,
  ``stdio_front/``, ``workers/``, their ``__pycache__`` folders included: the code that runs
  in the gateway, the workers, the STDIO front end and the launcher (``harness/`` too: the
  launcher's ``try`` and ``demo`` import it). Python imports more than ``*.py``: a bare ``X.pyc``, a package folder
  ``X/__init__.pyc`` or an extension ``X.so`` shadows ``X.py``, and a ``__pycache__``
  entry is trusted whenever its header matches its source's size and time, which anyone
  can forge. So nothing in a code folder is set aside: an unexpected file fails
  verification whatever its name. ``sign_manifest`` first compiles every module into
  ``__pycache__`` as checked-hash bytecode (PEP 552: Python re-checks it against the
  source and never rewrites it while the source is unchanged), so a signed, running
  installation writes no new files there;
* ``pyproject.toml`` and ``supervisord.conf`` at the root (when present: an installed,
  non-editable package has neither);
* ``config/providers.json``, read from the config folder (which may live elsewhere; its
  files are named ``config/...`` whatever the folder's real path): it decides where
  prompts go (``base_url``) and where keys come from, so an edit must be visible.

Not covered, on purpose:

* ``emulators/``: test doubles for the providers, run only by ``make demo`` and the tests,
  never by the production stack; covering them would force a re-sign after every test
  tool change without protecting anything that handles a real key or prompt.
* ``config/client-registry.json``: it changes on every ``llm-caller clients ...`` and the
  gateway reloads it live. Covering it would mean keeping the signing key on the host
  (defeating the point of an offline key) or breaking the stack on every client change.
  It holds only token hashes, is written 0600, and its changes are recorded in the audit
  log; that is its protection.
* the virtualenv and other installed packages: see runbook/security.md.

File format (one JSON file; the signature lives inside, so it cannot be lost or paired
with the wrong manifest)::

    {"format": "llm-caller-manifest/1", "created_at": "2026-12-01T10:00:00Z",
     "key_id": "<32 hex>", "files": {"cli/main.py": "<sha256 hex>", ...},
     "signature": "<base64 Ed25519 signature>"}

The signature covers every other field, serialised canonically (orjson, sorted keys,
no whitespace) behind a domain-separation prefix. ``key_id`` is the first 16 bytes of
SHA-256 over the raw 32-byte public key, in hex.

Start-up check: ``shared.startup_checks.refuse_start_unless_verified`` is the first
statement of ``gateway/__main__.py`` and ``workers/__main__.py``, so it runs before any
other module of ours is imported; in a child forked for the check (so that
``cryptography`` never stays resident in the gateway or a worker) it loads this module
from its source file and calls ``verify_manifest``. That is why this module imports only
the standard library, ``orjson`` and ``cryptography`` at the top: whatever it imported of
ours would run before being checked. The signing side (``shared.files``, ``shared.link_auth``) is
imported inside the functions that sign.

Enabled means "fail closed": a missing manifest or key is a refusal to start, never a
warning. A check performed by the code it checks only catches edits that leave the
check itself intact (a botched upgrade, a stray hand edit, a planted file). Against
someone who can rewrite the code, run ``manifest verify`` from a trusted copy with a
trusted public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import py_compile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# Nothing of ours is imported here: see "Start-up check" above.

__all__ = [
    "CODE_DIRS",
    "CONFIG_FILES",
    "FORMAT",
    "ROOT_FILES",
    "ManifestError",
    "SignedManifest",
    "code_root",
    "compile_sources",
    "covered_files",
    "key_id",
    "load_private_key",
    "load_public_key",
    "new_signing_keypair",
    "sign_manifest",
    "verify_manifest",
]

FORMAT = "llm-caller-manifest/1"
CODE_DIRS = ("cli", "gateway", "harness", "shared", "stdio_front", "workers")
ROOT_FILES = ("pyproject.toml", "supervisord.conf")
CONFIG_FILES = ("providers.json",)
_CONFIG_LABEL = "config"
_FIELDS = frozenset({"format", "created_at", "key_id", "files", "signature"})
_DOMAIN = b"llm-caller manifest v1\x00"
_SIGNATURE_BYTES = 64


class ManifestError(Exception):
    """Signing or verification failed. ``str()`` names the file(s) and the problem, for operators.

    ``changed``, ``missing`` and ``added`` list relative paths when files did not match.
    """

    def __init__(self, message: str, *, changed: tuple[str, ...] = (), missing: tuple[str, ...] = (),
                 added: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.changed, self.missing, self.added = changed, missing, added


@dataclass(frozen=True, slots=True)
class SignedManifest:
    path: Path
    key_id: str
    file_count: int
    created_at: str


def code_root() -> Path:
    """The folder holding ``shared/`` (and its siblings) as installed: the default root to sign."""
    return Path(__file__).resolve().parent.parent


# ---- which files ----------------------------------------------------------------------


def covered_files(root: Path, config_dir: Path | None = None) -> dict[str, Path]:
    """Every covered file that exists now, by manifest name; ``config_dir`` defaults to ``root/config``."""
    root = Path(root)
    config_dir = root / _CONFIG_LABEL if config_dir is None else Path(config_dir)
    found: dict[str, Path] = {}
    for folder in CODE_DIRS:
        found.update(_every_file(root, root / folder))
    for name in ROOT_FILES:
        if (root / name).is_file():
            found[name] = root / name
    for name in CONFIG_FILES:
        if (config_dir / name).is_file():
            found[f"{_CONFIG_LABEL}/{name}"] = config_dir / name
    return dict(sorted(found.items()))


def _every_file(root: Path, top: Path) -> dict[str, Path]:
    """Every file under ``top`` whatever its name or kind (``__pycache__`` included), by manifest name."""
    found: dict[str, Path] = {}
    seen_dirs: set[str] = set()
    # followlinks: a symlinked package folder is importable, so its code must be covered;
    # seen_dirs stops a link loop from walking forever.
    for folder, subdirs, files in os.walk(top, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:
            subdirs.clear()
            continue
        seen_dirs.add(real)
        subdirs.sort()
        for name in files:
            path = Path(folder, name)
            found[path.relative_to(root).as_posix()] = path
    return found


def compile_sources(root: Path) -> int:
    """Write checked-hash bytecode for every ``*.py`` under the code folders; returns how many.

    The import system then re-checks each ``.pyc`` against its source's hash instead of
    its timestamp, and leaves it alone while the source is unchanged: after signing, a
    running installation adds nothing to ``__pycache__`` that verification would flag.
    """
    count = 0
    for folder in CODE_DIRS:
        for name, path in _every_file(root, root / folder).items():
            if not name.endswith(".py") or "/__pycache__/" in f"/{name}":
                continue
            try:
                py_compile.compile(str(path), doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            except (py_compile.PyCompileError, OSError) as exc:
                raise ManifestError(f"cannot compile {path} ({exc}); fix: repair the file, or make "
                                    "its __pycache__ folder writable while signing") from None
            count += 1
    return count


def _hash_all(files: dict[str, Path]) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for name, path in files.items():
        try:
            with path.open("rb") as handle:
                hashes[name] = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise ManifestError(f"cannot read {path} ({exc.strerror}); fix: check its permissions") from None
    return hashes


# ---- keys -----------------------------------------------------------------------------


def new_signing_keypair() -> tuple[bytes, bytes]:
    """A fresh Ed25519 keypair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, public_pem


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The signing key from a 0600 PEM file (refused if others could read it, or not Ed25519)."""
    from shared.link_auth import KeyFileError, read_private_file  # signing side only: see module doc

    try:
        data = read_private_file(Path(path), "manifest signing key")
        key = serialization.load_pem_private_key(data, password=None)
    except KeyFileError as exc:
        raise ManifestError(str(exc)) from None
    except (ValueError, TypeError, binascii.Error):  # TypeError: the PEM is passphrase-protected
        raise ManifestError(f"{path} is not an unencrypted PEM private key; fix: use the .key.pem file "
                            "written by `llm-caller keys generate --kind manifest`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ManifestError(f"{path} is not an Ed25519 key; manifests are signed with Ed25519 only")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"public key {path} not found; fix: give the .pub.pem file that pairs with "
                            "the signing key") from None
    except OSError as exc:
        raise ManifestError(f"cannot read public key {path} ({exc.strerror})") from None
    except (ValueError, binascii.Error):
        raise ManifestError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ManifestError(f"{path} is not an Ed25519 public key")
    return key


# ---- sign and verify ------------------------------------------------------------------


def _signed_bytes(body: dict[str, Any]) -> bytes:
    # Canonical: sorted keys, no whitespace; the prefix keeps these signatures from ever
    # being valid for another message type signed with the same key.
    return _DOMAIN + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def sign_manifest(root: Path, private_key_file: Path, out_file: Path, *, config_dir: Path | None = None,
                  now: datetime | None = None) -> SignedManifest:
    """Compile, then hash the covered files under ``root`` and write the signed manifest to ``out_file`` (0644)."""
    from shared.files import json_bytes, write_bytes_atomic  # signing side only: see module doc

    private = load_private_key(private_key_file)
    root = Path(root)
    if not any((root / folder).is_dir() for folder in CODE_DIRS):
        raise ManifestError(f"no code found under {root} (expected {', '.join(CODE_DIRS)}/); fix: pass --root "
                            "with the folder that holds them")
    compile_sources(root)
    files = covered_files(root, config_dir)
    created = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {"format": FORMAT, "created_at": created, "key_id": key_id(private.public_key()),
                            "files": _hash_all(files)}
    signature = base64.b64encode(private.sign(_signed_bytes(body))).decode("ascii")
    write_bytes_atomic(Path(out_file), json_bytes({**body, "signature": signature}, sort_keys=True), mode=0o644)
    return SignedManifest(Path(out_file), body["key_id"], len(files), created)


def verify_manifest(root: Path, manifest_file: Path, public_key_file: Path, *,
                    config_dir: Path | None = None) -> None:
    """Return if ``manifest_file`` is signed by ``public_key_file``'s key and matches the files; else raise.

    Raises only ``ManifestError``, whose message names the manifest, the key or each
    changed/missing/added file. Reads the disk; performs no logging.
    """
    manifest_file = Path(manifest_file)
    body, signature = _read_manifest(manifest_file)
    public = load_public_key(public_key_file)
    expected_id = key_id(public)
    if body["key_id"] != expected_id:
        raise ManifestError(f"{manifest_file} was signed by another key (key id {body['key_id']}); "
                            f"{public_key_file} has key id {expected_id}")
    try:
        public.verify(signature, _signed_bytes(body))
    except InvalidSignature:
        raise ManifestError(f"{manifest_file} has an invalid signature: it was edited after signing or "
                            "the signature is corrupted; fix: re-sign with `llm-caller manifest sign`") from None
    _compare(manifest_file, body["files"], _hash_all(covered_files(root, config_dir)))


def _read_manifest(manifest_file: Path) -> tuple[dict[str, Any], bytes]:
    try:
        data: Any = orjson.loads(manifest_file.read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"manifest {manifest_file} not found; fix: run `llm-caller manifest sign` "
                            "after installing or upgrading") from None
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {manifest_file} ({exc.strerror})") from None
    except orjson.JSONDecodeError:
        raise ManifestError(f"manifest {manifest_file} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{manifest_file} is not an {FORMAT} manifest")
    if "signature" not in data:
        raise ManifestError(f"manifest {manifest_file} is not signed (no signature field)")
    if set(data) != _FIELDS or not _well_typed(data):
        raise ManifestError(f"manifest {manifest_file} has an unexpected layout; fix: re-sign it")
    try:
        signature = base64.b64decode(data.pop("signature"), validate=True)
    except (ValueError, binascii.Error):
        signature = b""
    if len(signature) != _SIGNATURE_BYTES:
        raise ManifestError(f"manifest {manifest_file} has a malformed signature (not 64 bytes of base64)")
    return data, signature


def _well_typed(data: dict[str, Any]) -> bool:
    files = data["files"]
    return (all(isinstance(data[k], str) for k in ("created_at", "key_id", "signature"))
            and isinstance(files, dict)
            and all(isinstance(v, str) for v in files.values()))


def _compare(manifest_file: Path, signed: dict[str, str], current: dict[str, str]) -> None:
    changed = tuple(sorted(n for n in signed.keys() & current.keys() if signed[n] != current[n]))
    missing = tuple(sorted(signed.keys() - current.keys()))
    added = tuple(sorted(current.keys() - signed.keys()))
    if not (changed or missing or added):
        return
    lines = [f"  - changed: {n}" for n in changed] + [f"  - missing: {n}" for n in missing]
    lines += [f"  - added (not in the manifest): {n}" for n in added]
    raise ManifestError(f"installed files do not match {manifest_file}:\n" + "\n".join(lines),
                        changed=changed, missing=missing, added=added)

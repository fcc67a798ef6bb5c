"""``llm-caller manifest | keys | token``: the operator side of the security building blocks.

* ``manifest sign`` / ``manifest verify``: the signed list of installed files (shared.manifest).
* ``keys generate``: manifest signing keys, link keys, CurveZMQ certificates, session keys.
* ``token issue``: a short-lived session token for a registered client (shared.session_tokens).

Nothing here prints a private key. The only secret ever printed is the session token
``token issue`` exists to print, once, alone on stdout so scripts can capture it.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import zmq

from cli.options import CommandRefused, add_config_dir, add_run_dir, reporting, resolve_settings
from shared.config import _NAME as NAME_PATTERN  # the one definition of a valid name
from shared.config import ClientEntry, load_client_registry
from shared.files import write_bytes_atomic
from shared.link_auth import LINK_KEY_BYTES, KeyFileError
from shared.manifest import ManifestError, code_root, new_signing_keypair, sign_manifest, verify_manifest
from shared.session_tokens import (
    MAX_TTL_S,
    SESSION_KEY_BYTES,
    issue_session_token,
    load_session_key,
    session_binding,
)
from shared.settings import default_keys_dir

__all__ = ["DEFAULT_KEYS_DIR", "DEFAULT_MANIFEST_NAME", "key_files", "register"]

DEFAULT_KEYS_DIR = Path("keys")
DEFAULT_MANIFEST_NAME = "manifest.json"
_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_PRIVATE, _PUBLIC = 0o600, 0o644

# kind -> (default name, {file suffix: mode}). Symmetric keys end in ".secret", never ".key":
# pyzmq's load_certificates() reads every *.key in a folder as a CURVE public certificate.
_KINDS: dict[str, tuple[str, dict[str, int]]] = {
    "manifest": ("manifest", {".key.pem": _PRIVATE, ".pub.pem": _PUBLIC}),
    "link": ("workers", {".link.secret": _PRIVATE}),
    "curve": ("gateway", {".key_secret": _PRIVATE, ".key": _PUBLIC}),  # ZeroMQ certificate names
    "session": ("gateway", {".session.secret": _PRIVATE}),
}


def key_files(kind: str, name: str | None = None, folder: Path = DEFAULT_KEYS_DIR) -> dict[Path, int]:
    """The files ``keys generate --kind KIND [--name NAME] [--out FOLDER]`` writes, with their modes."""
    default, suffixes = _KINDS[kind]
    return {folder / f"{name or default}{suffix}": mode for suffix, mode in suffixes.items()}


# ---- argument types -------------------------------------------------------------------


def _ttl(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; use a number and s, m, h or d, e.g. 15m")
    seconds = int(match[1]) * _UNIT_S[match[2]]
    if seconds > MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than the {MAX_TTL_S // 3600}h maximum; session "
                                         "tokens are short-lived by design (client tokens are the long-lived kind)")
    return seconds


def _name(text: str) -> str:
    if not re.fullmatch(NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(f"invalid name {text!r}: use 1-32 lowercase letters, digits, '-' or "
                                         "'_', starting with a letter")
    return text


def binding_of(entry: ClientEntry) -> str:
    """What ties the token to the client's current state (rotate, disable, re-add end it)."""
    return session_binding(entry.token_sha256, entry.session_generation)


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- manifest -------------------------------------------------------------------------


def _manifest_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    root = (args.root or code_root()).absolute()
    manifest = (args.manifest or root / DEFAULT_MANIFEST_NAME).absolute()
    return root, manifest, resolve_settings(args).config_dir


@reporting
def _sign(args: argparse.Namespace) -> int:
    root, out, config_dir = _manifest_paths(args)
    try:
        signed = sign_manifest(root, args.key, out, config_dir=config_dir)
    except ManifestError as exc:
        raise CommandRefused(str(exc)) from None
    print(f"signed {signed.file_count} files under {root} into {signed.path} (key id {signed.key_id})")
    if not (config_dir / "providers.json").is_file():
        print(f"llm-caller: warning: no providers.json in {config_dir}, so it is not covered; "
              "pass --config-dir if it lives elsewhere", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    root, manifest, config_dir = _manifest_paths(args)
    try:
        verify_manifest(root, manifest, args.pubkey, config_dir=config_dir)
    except ManifestError as exc:
        print(f"llm-caller: manifest verification FAILED: {exc}", file=sys.stderr)
        return 1
    summary = orjson.loads(manifest.read_bytes())  # already verified; read again only to describe it
    print(f"manifest OK: {len(summary['files'])} files under {root} match {manifest} "
          f"(signed {summary['created_at']}, key id {summary['key_id']})")
    return 0


# ---- keys -----------------------------------------------------------------------------


def _curve_certificates(name: str) -> tuple[bytes, bytes]:
    """(secret, public) certificate texts in the ZeroMQ format that zmq.auth.load_certificate reads."""
    public, secret = zmq.curve_keypair()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = f"metadata\n    name = \"{name}\"\ncurve\n    public-key = \"{public.decode('ascii')}\"\n"
    secret_text = (f"#   ZeroMQ CURVE **Secret** Certificate for {name} (llm-caller, {stamp})\n"
                   "#   Never share this file or widen its permissions.\n\n"
                   f"{head}    secret-key = \"{secret.decode('ascii')}\"\n")
    public_text = (f"#   ZeroMQ CURVE Public Certificate for {name} (llm-caller, {stamp})\n"
                   "#   Safe to share: peers use it to know they talk to this process.\n\n" + head)
    return secret_text.encode("ascii"), public_text.encode("ascii")


def _hex_secret(size: int) -> bytes:
    return (secrets.token_hex(size) + "\n").encode("ascii")


# kind -> name -> file contents, in the order of that kind's suffixes in _KINDS.
_MAKERS: dict[str, Callable[[str], tuple[bytes, ...]]] = {
    "manifest": lambda name: new_signing_keypair(),
    "link": lambda name: (_hex_secret(LINK_KEY_BYTES),),
    "curve": _curve_certificates,
    "session": lambda name: (_hex_secret(SESSION_KEY_BYTES),),
}


def _ensure_private_dir(folder: Path) -> None:
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        for created in reversed(missing):
            created.mkdir(mode=0o700, exist_ok=True)
            created.chmod(0o700)  # mkdir's mode is filtered by the umask; state it outright
    except OSError as exc:
        raise CommandRefused(f"cannot create {folder} ({exc.strerror}); fix: check the parent's "
                             "permissions or pass --out") from None
    if not folder.is_dir():
        raise CommandRefused(f"{folder} is not a folder; fix: pass --out with a folder")
    if folder.stat().st_mode & 0o077:
        print(f"llm-caller: warning: {folder} is open to group or others; fix: chmod 700 {folder}",
              file=sys.stderr)


@reporting
def _generate(args: argparse.Namespace) -> int:
    # Default: the operator's state folder, outside any checkout and apart from the (shared) config.
    folder = args.out.absolute() if args.out is not None else default_keys_dir(os.environ)
    targets = key_files(args.kind, args.name, folder)
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    if existing and not args.force:
        raise CommandRefused(f"{', '.join(existing)} already exist; nothing was written; fix: pass --force "
                             "to replace them (everything using the old key must get the new one)")
    _ensure_private_dir(folder)
    payloads = _MAKERS[args.kind](args.name or _KINDS[args.kind][0])
    for (path, mode), payload in zip(targets.items(), payloads, strict=True):
        write_bytes_atomic(path, payload, mode=mode)
        print(f"wrote {path} ({'private, 0600' if mode == _PRIVATE else 'public, 0644'})")
    if args.kind == "manifest":
        print("keep the .key.pem off this host once the first manifest is signed; install the .pub.pem "
              "where the service user cannot write it")
    return 0


# ---- token ----------------------------------------------------------------------------


def _usable_client(args: argparse.Namespace, now: float) -> ClientEntry:
    file = resolve_settings(args).registry_file
    clients = load_client_registry(file).clients
    entry = clients.get(args.client)
    if entry is None:
        known = ", ".join(sorted(clients)) or "none"
        raise CommandRefused(f"no client named {args.client!r} in {file} (known: {known}); "
                             "add it with `llm-caller clients add`")
    if entry.disabled:
        raise CommandRefused(f"client {args.client!r} is disabled; fix: `llm-caller clients enable "
                             f"{args.client}` first")
    if entry.expires_at is not None and entry.expires_at <= now:
        raise CommandRefused(f"client {args.client!r} expired at {_utc(entry.expires_at)}; fix: "
                             f"`llm-caller clients rotate {args.client} --expires-in 30d`")
    if entry.expires_at is not None and now + args.ttl > entry.expires_at:
        raise CommandRefused(f"client {args.client!r} expires at {_utc(entry.expires_at)}, before this "
                             "token would; fix: a shorter --ttl")
    return entry


def _session_key_file(args: argparse.Namespace) -> Path:
    """--key, else the running gateway's own key: $LLMC_SESSION_KEY_FILE or RUN_DIR/session.key."""
    if args.key is not None:
        return Path(args.key)
    return resolve_settings(args).session_key_file


@reporting
def _issue(args: argparse.Namespace) -> int:
    now = time.time()
    entry = _usable_client(args, now)
    path = _session_key_file(args)
    if args.key is None and not path.exists():
        raise CommandRefused(f"no session key at {path}; the gateway creates it when it first starts "
                             "(`llm-caller up`); fix: start the gateway, or pass --run-dir/--key naming the "
                             "key the gateway uses (LLMC_SESSION_KEY_FILE)")
    try:
        key = load_session_key(path)
    except KeyFileError as exc:
        raise CommandRefused(str(exc)) from None
    token = issue_session_token(key, args.client, args.transport, args.ttl, now=now, binding=binding_of(entry))
    print(token)  # stdout carries the token alone, for TOKEN=$(llm-caller token issue ...)
    print(f"session token for {args.client!r} over {args.transport}, valid until {_utc(int(now + args.ttl))}; "
          "it is not stored anywhere, so copy it now", file=sys.stderr)
    return 0


# ---- parser ---------------------------------------------------------------------------


def _sub(parent: Any, name: str, help_text: str) -> Any:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")


def _leaf(parent: Any, name: str, help_text: str) -> Any:
    return parent.add_parser(name, help=help_text, description=help_text)


def _manifest_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None, metavar="DIR",
                        help="folder holding cli/, gateway/, shared/, workers/ (default: this installation)")
    add_config_dir(parser)


def register(sub: Any) -> None:
    manifest = _sub(sub, "manifest", "sign or verify the list of installed code and config files")
    sign = _leaf(manifest, "sign", "hash the installed files and sign the list with an Ed25519 key")
    sign.add_argument("--key", type=Path, required=True, metavar="FILE", help="private .key.pem (mode 0600)")
    sign.add_argument("--out", dest="manifest", type=Path, default=None, metavar="FILE",
                      help=f"where to write the manifest (default: ROOT/{DEFAULT_MANIFEST_NAME})")
    _manifest_options(sign)
    sign.set_defaults(handler=_sign)
    verify = _leaf(manifest, "verify", "check the signature and every file; exit 1 naming each problem")
    verify.add_argument("--pubkey", type=Path, required=True, metavar="FILE", help="public .pub.pem")
    verify.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                        help=f"the manifest to check (default: ROOT/{DEFAULT_MANIFEST_NAME})")
    _manifest_options(verify)
    verify.set_defaults(handler=_verify)

    keys = _sub(sub, "keys", "create key files (private ones 0600 in a 0700 folder)")
    generate = _leaf(keys, "generate", "create a new key; refuses to replace one without --force")
    generate.add_argument("--kind", required=True, choices=sorted(_KINDS),
                          help="manifest: Ed25519 signing pair; link: gateway-worker HMAC key; "
                               "curve: CurveZMQ certificate pair; session: session-token signing key")
    generate.add_argument("--out", type=Path, default=None, metavar="DIR",
                          help="folder for the files (default: $XDG_STATE_HOME/llm-caller/keys, "
                               "else ~/.local/state/llm-caller/keys)")
    generate.add_argument("--name", type=_name, default=None, metavar="NAME",
                          help="file name stem, e.g. a provider name (default: manifest for manifest, "
                               "workers for link, gateway for curve and session)")
    generate.add_argument("--force", action="store_true", help="replace existing key files")
    generate.set_defaults(handler=_generate)

    token = _sub(sub, "token", "issue short-lived session tokens")
    issue = _leaf(token, "issue", "print a session token for a registered client, once")
    issue.add_argument("--client", type=_name, required=True, metavar="NAME", help="a client in client-registry.json")
    issue.add_argument("--ttl", type=_ttl, required=True, metavar="DURATION",
                       help=f"lifetime, e.g. 15m, 2h, 1d (at most {MAX_TTL_S // 3600}h)")
    issue.add_argument("--transport", choices=("http", "stdio"), default="http",
                       help="the only transport the token works on (default: http)")
    issue.add_argument("--key", type=Path, default=None, metavar="FILE",
                       help="session signing key (default: the gateway's own, $LLMC_SESSION_KEY_FILE or "
                            "RUN_DIR/session.key)")
    add_run_dir(issue, "the run folder the gateway was started with; its record names the config folder")
    add_config_dir(issue)
    issue.set_defaults(handler=_issue)

"""Checks every process runs before it does anything else.

Signed manifest: when the operator sets ``LLMC_MANIFEST_PUBKEY`` (a path to the Ed25519
public key), the gateway and every worker verify ``LLMC_MANIFEST_FILE`` (default
``manifest.json`` at the installation root) against the installed code and
providers.json, and refuse to start on any problem, naming the file. Enabled means fail
closed: a missing manifest or key is a refusal, never a warning. The switch lives in the
environment (set by the operator's service definition), not in providers.json, because
providers.json is one of the signed files: a switch inside it could be turned off by the
very edit the check exists to catch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["EX_CONFIG", "manifest_problem"]

# sysexits' EX_CONFIG: supervisord retries a few times, then shows the program FATAL.
EX_CONFIG = 78


def manifest_problem(config_dir: Path, env: Mapping[str, str] | None = None) -> str | None:
    """Why this installation must not start, or None (also None when the check is not enabled)."""
    env = os.environ if env is None else env
    public_key = env.get("LLMC_MANIFEST_PUBKEY", "").strip()
    if not public_key:
        return None
    # Imported only when enabled: the signature code pulls in `cryptography` (~15 MB of RSS
    # in every process), which a stack without a manifest check should not pay for.
    from shared.manifest import ManifestError, code_root, verify_manifest

    root = code_root()
    manifest = Path(env.get("LLMC_MANIFEST_FILE", "").strip() or root / "manifest.json")
    try:
        verify_manifest(root, manifest, Path(public_key), config_dir=config_dir)
    except ManifestError as exc:
        return f"signed manifest check failed: {exc}"
    return None

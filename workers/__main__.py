"""Run one provider worker: ``python -m workers PROVIDER`` (supervisord does this).

The signed manifest is checked before anything else of ours is imported (exit 78 when
it fails; see shared/startup_checks.py).
"""

from __future__ import annotations

import sys

# First, before any other module of ours is imported: the manifest check (stdlib only).
from shared.startup_checks import refuse_start_unless_verified

_PROGRAM = sys.argv[1] if len(sys.argv) > 1 else "worker"
refuse_start_unless_verified(_PROGRAM, f"llm-caller worker {_PROGRAM}")

# ruff: noqa: E402 (the imports below must come after the check above)
import argparse
import logging

import uvloop

from shared import otel
from shared.hardening import harden
from shared.heap import settle_heap
from shared.link_keys import CurveClientKeys, KeyFileError, LinkSetupError, load_curve_client, read_link_key
from shared.logs import configure_logging, log_event
from shared.redact import register_secret
from shared.settings import Settings
from workers.config_load import WorkerConfigError, load_provider
from workers.runtime import WorkerRuntime
from workers.secrets import resolve_secret


def load_link_material(settings: Settings, provider: str) -> tuple[bytes, CurveClientKeys | None]:
    """The link key, and this worker's CURVE keys when the endpoint is tcp://; raises with the operator message."""
    key = read_link_key(settings.link_key_file)
    if not settings.link_uses_curve:
        return key, None
    return key, load_curve_client(settings.curve_dir, provider)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("provider", help="the provider's name, a key of providers in providers.json")
    args = parser.parse_args(argv)
    harden(f"worker-{args.provider}")  # before the key is read: no core dump, no /proc reads, no orphan
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    try:
        # Before any thread starts (the log writer's): the check runs in a forked child.
        config = load_provider(settings.providers_file, args.provider)
    except WorkerConfigError as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    configure_logging(f"worker:{args.provider}", settings.log_level)
    log = logging.getLogger("workers")
    try:
        # Before the provider key is touched: a worker that cannot authenticate its link never runs.
        link_key, curve = load_link_material(settings, args.provider)
    except (KeyFileError, LinkSetupError, ValueError) as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    secret = resolve_secret(args.provider, config.secret, settings.secrets_dir) if config else None
    register_secret(secret)  # from here on every log and audit line of this process masks it, in any form
    otel.configure(f"worker:{args.provider}")  # span export, only when the operator asked for it
    runtime = WorkerRuntime(args.provider, config, secret, settings, link_key=link_key, curve=curve)
    del link_key
    del secret  # from here on only the runtime (and the redaction lookup set) hold it
    settle_heap()
    try:
        uvloop.run(runtime.run())
    except Exception:
        log.exception("worker_crashed", extra={"provider": args.provider})
        return 1
    log_event(log, "worker_stopped", provider=args.provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())

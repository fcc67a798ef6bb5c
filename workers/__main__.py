"""Run one provider worker: ``python -m workers PROVIDER`` (supervisord does this)."""

from __future__ import annotations

import argparse
import logging
import sys

import uvloop

from shared.config import ConfigError, load_providers
from shared.hardening import harden
from shared.heap import settle_heap
from shared.link_keys import CurveClientKeys, KeyFileError, LinkSetupError, load_curve_client, read_link_key
from shared.logs import configure_logging, log_event
from shared.settings import Settings
from shared.startup_checks import EX_CONFIG, manifest_problem
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
    parser.add_argument("provider", help="provider name from providers.json (e.g. openai)")
    args = parser.parse_args(argv)
    harden(f"worker-{args.provider}")  # before the key is read: no core dump, no /proc reads, no orphan
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    configure_logging(f"worker:{args.provider}", settings.log_level)
    log = logging.getLogger("workers")
    try:
        providers = load_providers(settings.providers_file)
    except ConfigError as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    problem = manifest_problem(settings.config_dir)
    if problem is not None:
        print(f"llm-caller worker {args.provider}: {problem}", file=sys.stderr)
        return EX_CONFIG
    try:
        # Before the provider key is touched: a worker that cannot authenticate its link never runs.
        link_key, curve = load_link_material(settings, args.provider)
    except (KeyFileError, LinkSetupError, ValueError) as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    config = providers.providers.get(args.provider)
    secret = resolve_secret(args.provider, config.secret, settings.secrets_dir) if config else None
    runtime = WorkerRuntime(args.provider, config, secret, settings, link_key=link_key, curve=curve)
    del link_key
    del secret  # the runtime holds the only reference from here on
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

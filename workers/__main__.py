"""Run one provider worker: ``python -m workers PROVIDER`` (supervisord does this)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from shared.config import ConfigError, load_providers
from shared.logs import configure_logging, log_event
from shared.settings import Settings
from workers.runtime import WorkerRuntime
from workers.secrets import resolve_secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("provider", help="provider name from providers.json (e.g. openai)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(f"worker:{args.provider}", settings.log_level)
    log = logging.getLogger("workers")
    try:
        providers = load_providers(settings.providers_file)
    except ConfigError as exc:
        print(f"llm-caller worker {args.provider}: {exc}", file=sys.stderr)
        return 2
    config = providers.providers.get(args.provider)
    secret = resolve_secret(args.provider, config.secret, settings.secrets_dir) if config else None
    runtime = WorkerRuntime(args.provider, config, secret, settings)
    del secret  # the runtime holds the only reference from here on
    try:
        asyncio.run(runtime.run())
    except Exception:
        log.exception("worker_crashed", extra={"provider": args.provider})
        return 1
    log_event(log, "worker_stopped", provider=args.provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())

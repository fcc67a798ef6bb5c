"""Run the gateway: ``python -m gateway`` (supervisord does this).

Loads and checks the configuration first: a broken config file stops the process with
one clear message and exit code 2, before anything listens.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvicorn

from gateway.app import create_app
from gateway.auth import RegistryTokenVerifier
from gateway.broker import WorkerBroker
from gateway.service import GatewayService
from shared.config import ConfigError, load_providers
from shared.logs import configure_logging, log_event
from shared.settings import Settings

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    providers = load_providers(settings.providers_file)
    verifier = RegistryTokenVerifier(settings.registry_file)
    settings.ensure_run_dir()
    broker = WorkerBroker(
        settings.worker_endpoint,
        heartbeat_s=settings.heartbeat_s,
        liveness=settings.liveness,
        concurrency={name: p.max_concurrency for name, p in providers.providers.items()},
    )
    await broker.start()
    service = GatewayService(providers, broker)
    app = create_app(service, verifier, settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises the signal to whatever
    # handler was installed before. A no-op handler there lets serve() return normally,
    # so the broker below closes its socket and the process exits 0 for supervisord.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    log_event(log, "gateway_listening", host=settings.host, port=settings.port)
    try:
        await server.serve()
    finally:
        await broker.stop()
        log_event(log, "gateway_stopped")


def main() -> int:
    settings = Settings.from_env()
    configure_logging("gateway", settings.log_level)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"llm-caller gateway: refusing to bind {settings.host}: only loopback is allowed", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        print(f"llm-caller gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

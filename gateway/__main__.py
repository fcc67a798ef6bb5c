"""Run the gateway: ``python -m gateway`` (supervisord does this).

Loads and checks the configuration first: a broken config file stops the process with
one clear message and exit code 2, before anything listens.
"""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn
import uvloop

from gateway.app import bind_refusal, create_app, is_loopback
from gateway.audit_hook import worker_audit_hook
from gateway.auth import RegistryTokenVerifier
from gateway.broker_setup import build_broker
from gateway.metrics import GatewayMetrics
from gateway.service import GatewayService
from gateway.tracing import configure_exporter
from shared.config import ConfigError, load_providers
from shared.hardening import harden
from shared.heap import settle_heap
from shared.link_keys import KeyFileError, LinkSetupError
from shared.logs import configure_logging, log_event
from shared.settings import Settings
from shared.startup_checks import EX_CONFIG, manifest_problem

log = logging.getLogger("gateway")


async def serve(settings: Settings) -> None:
    providers = load_providers(settings.providers_file)
    verifier = RegistryTokenVerifier(settings.registry_file)
    settings.ensure_run_dir()
    # Link key (and CURVE keys for tcp://) first: without them no worker may be trusted (D11).
    broker = build_broker(settings, providers, on_event=worker_audit_hook(settings.audit_file))
    await broker.start()
    service: GatewayService | None = None
    metrics = GatewayMetrics(broker, lambda: service.inflight if service is not None else 0)
    service = GatewayService(providers, broker, metrics=metrics)
    configure_exporter()
    app = create_app(service, verifier, settings, metrics)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on",
        http="httptools",
        # Every client is local, so X-Forwarded-For from 127.0.0.1 would be believed by
        # default: a caller could pick the source address the lockout counts against.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises the signal to whatever
    # handler was installed before. A no-op handler there lets serve() return normally,
    # so the broker below closes its socket and the process exits 0 for supervisord.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    log_event(log, "gateway_listening", host=settings.host, port=settings.port)
    settle_heap()
    try:
        await server.serve()
    finally:
        await broker.stop()
        log_event(log, "gateway_stopped")


def main() -> int:
    harden("gateway")  # before anything else: no core dump, no /proc reads by others, no orphan
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed LLMC_* value; the message names the variable
        print(f"llm-caller gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging("gateway", settings.log_level)
    problem = manifest_problem(settings.config_dir)
    if problem is not None:
        print(f"llm-caller gateway: {problem}", file=sys.stderr)
        return EX_CONFIG
    refusal = bind_refusal(settings)
    if refusal is not None:
        print(f"llm-caller gateway: {refusal}", file=sys.stderr)
        return 2
    if not is_loopback(settings.host):
        log_event(log, "non_loopback_bind", level=logging.WARNING, host=settings.host,
                  warning="the gateway is reachable from other machines; tokens travel unencrypted over HTTP")
    try:
        uvloop.run(serve(settings))
    except (ConfigError, KeyFileError, LinkSetupError) as exc:
        print(f"llm-caller gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

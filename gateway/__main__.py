"""Run the gateway: ``python -m gateway`` (supervisord does this).

Checks the signed manifest before importing anything else of ours (exit 78 when it
fails; see shared/startup_checks.py), then loads and checks the configuration: a broken
config file stops the process with one clear message and exit code 2, before anything
listens.
"""

from __future__ import annotations

# First, before any other module of ours is imported: the manifest check (stdlib only).
from shared.startup_checks import refuse_start_unless_verified

refuse_start_unless_verified("gateway", "llm-caller gateway")

# ruff: noqa: E402 (the imports below must come after the check above)
import asyncio
import contextlib
import logging
import signal
import sys

import uvicorn
import uvloop

from gateway.app import bind_refusal, create_app
from gateway.audit_hook import worker_audit_hook
from gateway.auth import RegistryTokenVerifier
from gateway.broker_setup import build_broker
from gateway.front_door import FrontDoor, raise_open_file_limit
from gateway.ledger import LedgerWriter
from gateway.metrics import GatewayMetrics
from gateway.service import GatewayService
from gateway.store import open_store
from gateway.tasks.runner import TaskRunner
from gateway.tracing import configure_exporter
from shared.config import ConfigError, load_providers
from shared.hardening import harden
from shared.heap import settle_heap
from shared.hosts import is_loopback
from shared.link_keys import KeyFileError, LinkSetupError
from shared.logs import configure_logging, log_event
from shared.settings import Settings

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
    store = await open_store(settings)  # a store that fails to open is reported, not fatal
    store_watch = asyncio.create_task(store.watch())  # getHealth's view of it; reopens a store that failed
    ledger = LedgerWriter(store, settings.store)  # usage rows and budgets (gateway.ledger)
    await ledger.start()
    service = GatewayService(providers, broker, metrics=metrics, store=store,
                             store_settings=settings.store, ledger=ledger)
    tasks = TaskRunner(store, settings.store)
    await tasks.start_housekeeping()  # lease first, then fail tasks a stopped gateway left working
    configure_exporter()
    app = create_app(service, verifier, settings, metrics, tasks)
    limits = settings.security.http
    door = FrontDoor(limits, open_files=raise_open_file_limit())
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on",
        # httptools with the front door's limits on heads, slow clients and open connections.
        http=door.protocol, timeout_keep_alive=limits.keepalive_timeout_s,
        # No WebSocket endpoint exists; an Upgrade must not hand the socket to another parser.
        ws="none",
        # Every client is local, so X-Forwarded-For from 127.0.0.1 would be believed by
        # default: a caller could pick the source address the lockout counts against.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    sweeper = asyncio.create_task(door.sweep(server.server_state.connections))
    # uvicorn handles SIGTERM/SIGINT while serving, then re-raises the signal to whatever
    # handler was installed before. A no-op handler there lets serve() return normally,
    # so the broker below closes its socket and the process exits 0 for supervisord.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    log_event(log, "gateway_listening", host=settings.host, port=settings.port, max_connections=door.cap)
    settle_heap()
    try:
        await server.serve()
    finally:
        await tasks.stop()  # running task calls end as failed (never re-run), while the store is open
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await broker.stop()
        store_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await store_watch
        await ledger.stop()  # every call has ended: its rows go to the store before it closes
        await store.close()
        log_event(log, "gateway_stopped")


def main() -> int:
    harden("gateway")  # before anything else: no core dump, no /proc reads by others, no orphan
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # a malformed LLMC_* value; the message names the variable
        print(f"llm-caller gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging("gateway", settings.log_level)
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

"""Build the gateway's WorkerBroker from settings: every front end (HTTP, stdio) should use this.

It loads what the authenticated link needs (decision D11): the link key, and the CURVE
keys when the worker endpoint is tcp://. Failures raise ``KeyFileError`` or
``LinkSetupError`` whose ``str()`` is the operator message; the caller prints it and
exits 2 before anything listens.
"""

from __future__ import annotations

from gateway.broker import EventHook, WorkerBroker
from shared.config import ProvidersFile
from shared.link_keys import LinkSetupError, load_curve_server, read_link_key
from shared.settings import Settings

__all__ = ["build_broker"]


def build_broker(settings: Settings, providers: ProvidersFile, on_event: EventHook | None = None) -> WorkerBroker:
    try:
        endpoint = settings.worker_endpoint
    except ValueError as exc:
        raise LinkSetupError(str(exc)) from None
    link_key = read_link_key(settings.link_key_file)
    curve = load_curve_server(settings.curve_dir) if settings.link_uses_curve else None
    return WorkerBroker(
        endpoint,
        link_key=link_key,
        workers=list(providers.providers),
        curve=curve,
        on_event=on_event,
        heartbeat_s=settings.heartbeat_s,
        liveness=settings.liveness,
        concurrency={name: p.max_concurrency for name, p in providers.providers.items()},
    )

"""The gateway's HTTP application: MCP over streamable HTTP behind the security guard.

Layers, outermost first: ``gateway.guard.SecurityGuard`` (Host/Origin, body size,
lockout, bearer check, audit), then the SDK's Starlette app (its own Host/Origin and
bearer checks as a second line, the MCP endpoint), plus ``/healthz``, ``/session``
(``gateway.session_endpoint``) and JSON 404s for OAuth discovery probes (``gateway.no_oauth``).
"""

from __future__ import annotations

import ipaddress
import os

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.access import AccessControl
from gateway.auth import RegistryTokenVerifier
from gateway.guard import SecurityGuard
from gateway.lockout import LockoutPolicy
from gateway.mcp_server import build_mcp_server
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.no_oauth import no_oauth_routes
from gateway.service import GatewayService
from gateway.session_endpoint import SESSION_PATH, load_or_create_session_key, session_routes
from gateway.tasks.runner import TaskRunner
from shared.hosts import is_loopback
from shared.settings import Settings

__all__ = ["MCP_PATH", "allowed_hosts", "bind_refusal", "create_app"]

MCP_PATH = "/mcp"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


async def _healthz(_request: Request) -> Response:
    # Liveness only, for the launcher and supervisors: no worker detail, no auth needed.
    # The pid lets the launcher tell its own gateway from another process on the port.
    return JSONResponse({"status": "ok", "pid": os.getpid()})


def _metrics_route(metrics: GatewayMetrics) -> Route:
    async def scrape(_request: Request) -> Response:
        # Loopback only (the guard checks Host/Origin) and without auth, as Prometheus
        # scrapers expect; it holds counts and states, never a key, token or prompt.
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return Route("/metrics", scrape, methods=["GET"])


def bind_refusal(settings: Settings) -> str | None:
    """Why the gateway must not bind ``settings.host``, or None. Non-loopback needs an explicit opt-in."""
    if is_loopback(settings.host) or settings.security.allow_non_loopback:
        return None
    return (f"refusing to bind {settings.host}: only loopback is allowed unless the operator opts in "
            "(LLMC_ALLOW_NON_LOOPBACK=1, or `llm-caller up --allow-non-loopback`)")


def allowed_hosts(settings: Settings) -> list[str]:
    """Host header values naming this gateway: the loopback names with the real port, plus the bind address.

    The port is explicit (not ``:*``): another local service's port is a different origin.
    """
    names = list(_LOOPBACK_NAMES)
    public = _public_name(settings.host)
    if public is not None and public not in names:
        names.append(public)
    return [f"{name}:{settings.port}" for name in names]


def _public_name(host: str) -> str | None:
    """The bind address as it appears in a Host header; None for a wildcard (0.0.0.0, ::)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a host name
    if address.is_unspecified:
        return None
    return f"[{host}]" if address.version == 6 else host


def create_app(
    service: GatewayService, verifier: RegistryTokenVerifier, settings: Settings, metrics: GatewayMetrics | None = None,
    tasks: TaskRunner | None = None,
) -> ASGIApp:
    key, problem = load_or_create_session_key(settings)
    verifier.enable_session_tokens(key, problem)
    security = settings.security
    access = AccessControl(verifier, LockoutPolicy(threshold=security.lockout_threshold,
                                                   window_s=security.lockout_window_s,
                                                   base_s=security.lockout_base_s,
                                                   max_s=security.lockout_max_s), settings.audit_file)
    hosts = allowed_hosts(settings)
    origins = [f"http://{host}" for host in hosts]
    base = f"http://{_public_name(settings.host) or '127.0.0.1'}:{settings.port}"
    auth = AuthSettings(
        # The SDK's bearer check runs as a second line behind the guard. No resource URL:
        # the registry issues tokens out of band, so there is no RFC 9728 metadata to
        # serve and no authorization server to name (gateway.no_oauth says why).
        issuer_url=base,  # type: ignore[arg-type]
        resource_server_url=None,
        validate_token_resource=False,
    )
    server = build_mcp_server(service, verifier.client, tasks=tasks)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=settings.host,
        auth=auth,
        token_verifier=verifier,
        transport_security=TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins),
        max_request_body_size=security.max_body_bytes,
        custom_starlette_routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            *session_routes(access, settings),
            *no_oauth_routes(),
            *([_metrics_route(metrics)] if metrics is not None else []),
        ],
    )
    return SecurityGuard(app, access, hosts=hosts, origins=origins, max_body_bytes=security.max_body_bytes,
                         auth_paths=(MCP_PATH, SESSION_PATH), mcp_path=MCP_PATH)

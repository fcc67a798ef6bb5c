"""The gateway's HTTP application: MCP over streamable HTTP, bearer auth, health probe."""

from __future__ import annotations

from mcp.server.auth.settings import AuthSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import RegistryTokenVerifier
from gateway.mcp_server import build_mcp_server
from gateway.service import GatewayService
from shared.settings import Settings

__all__ = ["create_app"]

MCP_PATH = "/mcp"


async def _healthz(_request: Request) -> Response:
    # Liveness only, for the launcher and supervisors: no worker detail, no auth needed.
    return JSONResponse({"status": "ok"})


def create_app(service: GatewayService, verifier: RegistryTokenVerifier, settings: Settings) -> Starlette:
    server = build_mcp_server(service, verifier.client)
    base = f"http://{settings.host}:{settings.port}"
    auth = AuthSettings(
        # We are a resource server only; the registry issues tokens out of band. The
        # issuer is advertised in the RFC 9728 metadata as where tokens come from.
        issuer_url=base,  # type: ignore[arg-type]
        resource_server_url=f"{base}{MCP_PATH}",  # type: ignore[arg-type]
        validate_token_resource=False,
    )
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=settings.host,
        auth=auth,
        token_verifier=verifier,
        custom_starlette_routes=[Route("/healthz", _healthz, methods=["GET"])],
    )

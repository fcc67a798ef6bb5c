"""Answers for OAuth discovery probes: a JSON 404 that tells a person where tokens come from.

This gateway is an MCP server with its own bearer tokens (``llm-caller clients add``),
not an OAuth 2.1 resource server with an authorization server behind it; MCP makes
authorization optional, and its OAuth flow has nothing to offer here. So the 401 names
no ``resource_metadata`` (RFC 9728 makes that parameter optional), and the places an
OAuth-capable client looks next anyway (RFC 9728 and RFC 8414 well-known documents,
OpenID configuration, the 2025-03-26 default ``/register``, ``/authorize`` and ``/token``)
answer 404 with an OAuth-style JSON error instead of a bare "Not Found". Clients that
give up on discovery show that text (the TypeScript SDK reports a failed registration
with the server's ``error_description``), which is the sentence a person needs: how to
get a token and where to put it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["NO_OAUTH", "no_oauth_routes"]

NO_OAUTH = ("this gateway does not use OAuth: get a client token from the operator (`llm-caller clients add "
            "NAME`) and configure the MCP client to send it as the header Authorization: Bearer <token>")
_WELL_KNOWN = ("oauth-protected-resource", "oauth-authorization-server", "openid-configuration")
_LEGACY_ENDPOINTS = ("/register", "/authorize", "/token")


async def _not_here(_request: Request) -> Response:
    return JSONResponse({"error": "invalid_request", "error_description": NO_OAUTH}, status_code=404,
                        headers={"Cache-Control": "no-store"})


def no_oauth_routes() -> list[Route]:
    """Routes for every discovery document and legacy OAuth endpoint a client may probe."""
    routes = []
    for name in _WELL_KNOWN:
        routes.append(Route(f"/.well-known/{name}", _not_here, methods=["GET", "POST"]))
        routes.append(Route(f"/.well-known/{name}/{{rest:path}}", _not_here, methods=["GET", "POST"]))
    routes.extend(Route(path, _not_here, methods=["GET", "POST"]) for path in _LEGACY_ENDPOINTS)
    return routes

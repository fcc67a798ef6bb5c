"""A loopback reverse proxy that adds the gateway's bearer token to every request.

The conformance runner (``conformance server --url``) has no option to send HTTP
headers, and the gateway answers every unauthenticated request with 401, so without
this shim the suite would only ever test our auth middleware. The proxy forwards each
request as it came (method, path, headers, body) and changes only two things:

* it adds ``Authorization`` when the request has none;
* a ``Host`` or ``Origin`` that names the proxy itself is rewritten to name the gateway,
  as if the client had connected directly. Any other value (a forged ``Host`` from the
  DNS-rebinding scenario, a foreign ``Origin``) passes through untouched, so what the
  suite checks is still the gateway's own behaviour.

Responses are streamed back as they arrive, so SSE answers keep their timing.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["BearerProxy"]

# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, not the message.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade",
})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_host: str, upstream_port: int, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.token = token
        own_port = self.server_address[1]
        upstream = f"{upstream_host}:{upstream_port}"
        self.host_rewrites = {f"{name}:{own_port}": upstream for name in _LOOPBACK_NAMES}
        self.origin_rewrites = {f"http://{name}:{own_port}": f"http://{upstream}" for name in _LOOPBACK_NAMES}


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    # HTTP/1.0 replies end at connection close, so a chunked (SSE) upstream body can be
    # relayed as it arrives without re-framing it.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return  # the suite prints its own report; per-request lines would drown it

    def _outgoing_headers(self) -> list[tuple[str, str]]:
        out = []
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                continue
            if lowered == "host":
                value = self.server.host_rewrites.get(value, value)
            elif lowered == "origin":
                value = self.server.origin_rewrites.get(value, value)
            out.append((name, value))
        if "Authorization" not in self.headers:
            out.append(("Authorization", f"Bearer {self.server.token}"))
        return out

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=120)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self._outgoing_headers():
                upstream.putheader(name, value)
            upstream.endheaders(body)
            self._stream_back(upstream.getresponse())
        finally:
            upstream.close()

    def _stream_back(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.end_headers()
        while chunk := response.read1(65536):
            self.wfile.write(chunk)
            self.wfile.flush()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = _relay


class BearerProxy:
    """``with BearerProxy(url, token) as proxy:`` then point a header-less client at ``proxy.url``."""

    def __init__(self, upstream_url: str, token: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.hostname not in _LOOPBACK_NAMES:
            raise ValueError("the UAT proxy only forwards to a gateway on this machine (127.0.0.1)")
        self._path = parts.path or "/"
        self._server = _ProxyServer(parts.hostname, parts.port or 80, token)
        self._thread = threading.Thread(target=self._server.serve_forever, name="uat-bearer-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._path}"

    def __enter__(self) -> BearerProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

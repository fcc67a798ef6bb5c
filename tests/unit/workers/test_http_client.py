"""workers.http_client.AiohttpClient against real sockets: answers kept, failures classified.

Each case is a small raw TCP server on 127.0.0.1 doing one thing wrong, so the mapping is
checked against what actually happens on the wire rather than against aiohttp's classes.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared import errors
from workers.http_client import AiohttpClient, FullReply, Timeouts, TransportFailure
from workers.providers.base import transport_error

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _client(read_s: float = 5.0, connections: int = 4) -> AiohttpClient:
    return AiohttpClient(Timeouts(connect_s=5.0, read_s=read_s, pool_s=5.0), max_connections=connections)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def _answer(raw: bytes, *, then_close: bool = True) -> Behaviour:
    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(raw)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await asyncio.sleep(30)  # a server that keeps the connection open without closing it

    return behave


async def _call(behaviour: Behaviour, *, read_s: float = 5.0, stream: bool = False) -> FullReply:
    server = await asyncio.start_server(behaviour, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    client = _client(read_s)
    try:
        if not stream:
            return await client.fetch("POST", url, headers={"content-type": "application/json"}, content=b'{"a": 1}')
        async with client.open("POST", url, headers={}, content=b"{}") as reply:
            body = b"".join([chunk async for chunk in reply.chunks()])
        return FullReply(reply.status, reply.headers, body)
    finally:
        await client.aclose()
        server.close()


def test_an_answer_keeps_status_headers_and_body_and_the_request_goes_out_whole() -> None:
    seen: list[bytes] = []
    body = b'{"ok": true}'

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nX-Should-Retry: true\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    reply = asyncio.run(_call(behave))
    assert reply.status == 429 and not reply.ok and reply.body == body
    assert reply.headers["retry-after"] == "2" and reply.headers["X-SHOULD-RETRY"] == "true"
    assert seen[0].startswith(b"POST /v1/x HTTP/1.1\r\n") and seen[0].endswith(b'\r\n\r\n{"a": 1}')
    assert b"content-type: application/json" in seen[0].lower()


@pytest.mark.parametrize(("raw", "stream"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", False),  # truncated body
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", True),  # stream cut off
    (b"", False),  # closed without answering
    (b"THIS IS NOT HTTP\r\n\r\n", False),  # malformed
])
def test_broken_answers_are_protocol_failures_interrupted_only_once_text_was_sent(raw: bytes, stream: bool) -> None:
    with pytest.raises(TransportFailure) as caught:
        asyncio.run(_call(_answer(raw), stream=stream))
    assert caught.value.kind == "protocol"
    assert transport_error(caught.value, "p").type == "provider_error"
    assert transport_error(caught.value, "p", text_sent=True).type == "stream_interrupted"


def test_a_silent_server_is_a_read_timeout() -> None:
    with pytest.raises(TransportFailure) as caught:
        asyncio.run(_call(_answer(b"", then_close=False), read_s=0.2))
    assert caught.value.kind == "read_timeout"


def test_a_refused_connection_is_a_connect_failure_whose_message_has_no_url_or_credentials() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def call() -> None:
        client = _client()
        try:
            await client.fetch("GET", f"http://user:hunter2@127.0.0.1:{port}/v1/models", headers={})
        finally:
            await client.aclose()

    with pytest.raises(TransportFailure) as caught:
        asyncio.run(call())
    assert caught.value.kind == "connect"
    assert "hunter2" not in str(caught.value) and str(port) not in str(caught.value)


def test_a_body_left_unread_does_not_hand_its_connection_to_the_next_request() -> None:
    connections: list[int] = []
    body = b"data: x\n\n" * 200_000

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await _read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    async def run() -> list[bytes]:
        server = await asyncio.start_server(behave, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/s"
        client = _client(connections=1)
        try:
            async with client.open("GET", url, headers={}) as reply:
                async for _ in reply.chunks():
                    break  # stop reading after the first piece
            first = (await client.fetch("GET", url, headers={})).body  # must not see the rest of the first body
            second = (await client.fetch("GET", url, headers={})).body  # may reuse the clean connection
            return [first, second]
        finally:
            await client.aclose()
            server.close()

    assert asyncio.run(run()) == [body, body]
    assert len(connections) == 2


# ---- TLS: providers are reached over HTTPS, and their certificates are verified --------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-caller test provider")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def _https_call(cert_file: Path, key_file: Path, client: AiohttpClient) -> FullReply:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    body = b'{"ok": true}'
    server = await asyncio.start_server(
        _answer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)), "127.0.0.1", 0,
        ssl=server_tls)
    try:
        return await client.fetch("GET", f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/models",
                                  headers={})
    finally:
        await client.aclose()
        server.close()


def test_a_certificate_no_trusted_authority_signed_is_refused_as_a_connect_failure(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    with pytest.raises(TransportFailure) as caught:
        asyncio.run(_https_call(cert_file, key_file, _client()))  # the default: certifi's authorities
    assert caught.value.kind == "connect"
    error = transport_error(caught.value, "openai")
    assert isinstance(error, errors.ConnectionFailed) and "TLS certificate was not accepted" in error.message


def test_https_works_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    client = AiohttpClient(Timeouts(connect_s=5.0, read_s=5.0, pool_s=5.0), max_connections=2, ssl_context=trusted)
    reply = asyncio.run(_https_call(cert_file, key_file, client))
    assert reply.ok and reply.body == b'{"ok": true}'


def test_the_ca_bundle_is_loaded_on_the_first_https_request_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """~2 MB resident that a worker calling a local http server never needs (bench memory)."""
    made: list[str | None] = []
    real = ssl.create_default_context

    def counting(*args: object, cafile: str | None = None, **kwargs: object) -> ssl.SSLContext:
        made.append(cafile)
        return real(*args, cafile=cafile, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("workers.http_client.ssl.create_default_context", counting)
    client = _client()
    # The one-shot server closes after answering: say so, or the second request would reuse a
    # closed connection (the client does not resend on its own: worker counters must add up).
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"

    async def http_then_https() -> None:
        server = await asyncio.start_server(_answer(ok), "127.0.0.1", 0)
        try:
            for _ in range(2):
                await client.fetch("GET", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/models",
                                   headers={})
        finally:
            server.close()
        assert made == []  # plain http: nothing to verify, nothing loaded
        cert_file, key_file = _self_signed(tmp_path)
        with pytest.raises(TransportFailure):
            await _https_call(cert_file, key_file, client)  # closes the client

    asyncio.run(http_then_https())
    # https: certifi's authorities, as before (None: the test server's own context)
    assert [cafile for cafile in made if cafile is not None] == [certifi.where()]

"""Cheap checks that a provider answers, and model discovery, through the kind's own listing.

A probe is the model listing the kind's worker adapter does (``list_models``), sent with
the workers' HTTP client (``workers.http_client``, aiohttp: the one client library for
provider calls). It is free on every provider and proves the URL, the network path and
the key together; it never sends a completion, which would cost money. Messages name the
host and the HTTP status only: response bodies can echo the key that was sent, so they
are never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared import errors
from shared.config import KIND_CAPABILITIES, ProviderConfig
from shared.kind_spec import KindOptions
from shared.models import ModelInfo
from workers.http_client import AiohttpClient, HttpClient, Reply, Timeouts
from workers.providers.adapters import create_adapter
from workers.providers.registry import KINDS

__all__ = ["FoundModel", "ProbeResult", "guess_capabilities", "probe"]

_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class FoundModel:
    id: str
    type: str | None = None  # a server's own model type, where it says (LM Studio: llm, vlm, embeddings)
    loaded: bool = True
    capabilities: tuple[str, ...] = ()  # what the kind's listing found the model can do


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    models: tuple[FoundModel, ...] = ()


def guess_capabilities(kind: str, model: FoundModel) -> list[str]:
    """What a listed model can probably do (as the kind's listing judged it), within what the kind can do."""
    return [c for c in model.capabilities if c in KIND_CAPABILITIES[kind]]


class _Recording(HttpClient):
    """The workers' client, remembering the last answer's status and path for the probe's messages."""

    def __init__(self, inner: HttpClient) -> None:
        self._inner = inner
        self.last: tuple[int, str] | None = None

    @contextlib.asynccontextmanager
    async def open(self, method: str, url: str, *, headers: Mapping[str, str],
                   content: bytes | None = None) -> AsyncIterator[Reply]:
        async with self._inner.open(method, url, headers=headers, content=content) as reply:
            self.last = (reply.status, urlsplit(url).path)
            yield reply

    async def aclose(self) -> None:
        await self._inner.aclose()


def probe(kind: str, base_url: str, key: str | None, *, options: KindOptions | None = None) -> ProbeResult:
    """List the provider's models with ``key`` and the kind's ``options`` (its defaults when None);
    never raises for network or HTTP trouble."""
    host = _host(base_url)
    client = _Recording(AiohttpClient(Timeouts(_TIMEOUT_S, _TIMEOUT_S, _TIMEOUT_S), max_connections=2))
    config = ProviderConfig.model_construct(kind=kind, base_url=base_url.rstrip("/"), discover_models=True,
                                            options=options if options is not None else KINDS[kind].options())
    try:
        listed = asyncio.run(_list(create_adapter("probe", config, key, client).list_models, client))
    except errors.LLMCallerError as exc:
        return ProbeResult(False, _failure(host, exc, client.last))
    models = [_found(info) for info in listed]
    loaded = sum(1 for m in models if m.loaded)
    counts = f"{len(models)} models" + (f", {loaded} loaded" if loaded != len(models) else "")
    return ProbeResult(True, f"{host} answered: {counts}", tuple(models))


async def _list(list_models: Callable[[], Awaitable[list[ModelInfo]]], client: HttpClient) -> list[ModelInfo]:
    try:
        return await list_models()
    finally:
        await client.aclose()


def _found(info: ModelInfo) -> FoundModel:
    return FoundModel(info.id, info.kind, info.loaded is not False, tuple(info.capabilities))


def _failure(host: str, exc: errors.LLMCallerError, last: tuple[int, str] | None) -> str:
    """The operator line for a failed listing: by the last HTTP status, or how the connection failed."""
    if last is None:
        if isinstance(exc, errors.Timeout):
            return f"{host} did not answer within {_TIMEOUT_S:g} s"
        return f"cannot reach {host} (connection refused or host unknown)"
    status, path = last
    # By the mapped error too: some APIs refuse a wrong key with a 400 (Gemini's API_KEY_INVALID).
    if status in (401, 403) or isinstance(exc, errors.AuthError):
        return f"{host} rejected the key (HTTP {status}); check the key, and that it belongs to this provider"
    if status == 404:
        return f"{host} has no model listing at {path} (HTTP 404); check the base URL"
    if not 200 <= status < 300:
        return f"{host} answered HTTP {status} to a model listing"
    return f"{host} did not answer with a model list; check the base URL"


def _host(base_url: str) -> str:
    # Host and port only: a URL may carry user:password, which must not be printed.
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return host

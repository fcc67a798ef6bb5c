"""Cheap checks that a provider answers, and LM Studio model discovery.

A probe is one model listing (``GET .../models``): free on every provider, and enough to
prove the URL, the network path and the key together. It never sends a completion,
which would cost money. Messages name the host and the HTTP status only: response
bodies can echo the key that was sent, so they are never shown.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import httpx

from shared.config import KIND_CAPABILITIES
from shared.models import SERVER_TYPE_CAPABILITIES, capabilities_by_name

__all__ = ["FoundModel", "ProbeResult", "guess_capabilities", "probe"]

_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class FoundModel:
    id: str
    type: str | None = None  # LM Studio's native listing only: llm, vlm, embeddings
    loaded: bool = True


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    models: tuple[FoundModel, ...] = ()


def guess_capabilities(kind: str, model: FoundModel) -> list[str]:
    """What a listed model can probably do: LM Studio says so; for others the id is the best hint."""
    caps = SERVER_TYPE_CAPABILITIES.get(model.type or "") or capabilities_by_name(model.id)
    return [c for c in caps if c in KIND_CAPABILITIES[kind]]


class _Failed(Exception):
    """A probe step failed; ``str()`` is the operator message."""


def probe(kind: str, base_url: str, key: str | None, *, anthropic_version: str = "2023-06-01") -> ProbeResult:
    """List the provider's models with ``key``; never raises for network or HTTP trouble."""
    host = _host(base_url)
    try:
        with _client(base_url) as http:
            if kind == "openai":
                models = _openai_models(http, f"{base_url}/models", key)
            elif kind == "anthropic":
                models = _anthropic_models(http, base_url, key, anthropic_version)
            else:
                models = _lmstudio_models(http, base_url)
    except _Failed as exc:
        return ProbeResult(False, str(exc))
    except httpx.TimeoutException:
        return ProbeResult(False, f"{host} did not answer within {_TIMEOUT_S:g} s")
    except httpx.ConnectError:
        return ProbeResult(False, f"cannot reach {host} (connection refused or host unknown)")
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"request to {host} failed ({type(exc).__name__})")
    loaded = sum(1 for m in models if m.loaded)
    counts = f"{len(models)} models" + (f", {loaded} loaded" if loaded != len(models) else "")
    return ProbeResult(True, f"{host} answered: {counts}", tuple(models))


def _host(base_url: str) -> str:
    # Host and port only: a URL may carry user:password, which must not be printed.
    url = httpx.URL(base_url)
    return f"{url.host}:{url.port}" if url.port else url.host


def _client(base_url: str) -> httpx.Client:
    # Loopback never goes through a proxy from the environment; remote hosts do, as the workers' do.
    try:
        loopback = ipaddress.ip_address(httpx.URL(base_url).host).is_loopback
    except ValueError:
        loopback = httpx.URL(base_url).host == "localhost"
    return httpx.Client(timeout=_TIMEOUT_S, trust_env=not loopback, follow_redirects=False)


def _get_json(http: httpx.Client, url: str, headers: dict[str, str]) -> Any:
    response = http.get(url, headers=headers)
    host = _host(url)
    if response.status_code in (401, 403):
        raise _Failed(f"{host} rejected the key (HTTP {response.status_code}); "
                      "check the key, and that it belongs to this provider")
    if response.status_code == 404:
        raise _Failed(f"{host} has no model listing at {httpx.URL(url).path} (HTTP 404); check the base URL")
    if response.status_code != 200:
        raise _Failed(f"{host} answered HTTP {response.status_code} to a model listing")
    try:
        return response.json()
    except ValueError:
        raise _Failed(f"{host} did not answer with JSON; check the base URL") from None


def _items(data: Any, host: str) -> list[dict[str, Any]]:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise _Failed(f"{host} did not answer with a model list; check the base URL")
    return [item for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]


def _openai_models(http: httpx.Client, url: str, key: str | None) -> list[FoundModel]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return [FoundModel(item["id"]) for item in _items(_get_json(http, url, headers), _host(url))]


def _anthropic_models(http: httpx.Client, base_url: str, key: str | None, version: str) -> list[FoundModel]:
    headers = {"anthropic-version": version, **({"x-api-key": key} if key else {})}
    url = f"{base_url}/v1/models?limit=1000"
    return [FoundModel(item["id"]) for item in _items(_get_json(http, url, headers), _host(url))]


def _lmstudio_models(http: httpx.Client, base_url: str) -> list[FoundModel]:
    """The native listing (type and loaded state), else the OpenAI-compatible one (loaded models only)."""
    try:
        data = _get_json(http, f"{base_url}/api/v0/models", {})
    except _Failed:
        data = None
    # Older servers answer unknown routes 404, or 200 with {"error": ...}.
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return [FoundModel(item["id"], item.get("type") if isinstance(item.get("type"), str) else None,
                           item.get("state", "loaded") == "loaded")
                for item in _items(data, _host(base_url))]
    return _openai_models(http, f"{base_url}/v1/models", None)

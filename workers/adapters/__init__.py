"""Provider adapters, one per provider kind, and the registry the worker builds them from."""

from __future__ import annotations

from shared.config import ProviderConfig
from workers.adapters.anthropic import AnthropicAdapter
from workers.adapters.base import ProviderAdapter
from workers.adapters.lmstudio import LMStudioAdapter
from workers.adapters.openai import OpenAIAdapter
from workers.http_client import HttpClient

__all__ = ["ADAPTERS", "create_adapter"]

ADAPTERS: dict[str, type[ProviderAdapter]] = {
    cls.kind: cls for cls in (OpenAIAdapter, AnthropicAdapter, LMStudioAdapter)
}


def create_adapter(
    name: str, config: ProviderConfig, secret: str | None, client: HttpClient
) -> ProviderAdapter:
    """The adapter for ``config.kind``, bound to this provider's name, key and HTTP client."""
    try:
        cls = ADAPTERS[config.kind]
    except KeyError:
        # Config validation allows only known kinds, so this is a bug, not an operator error.
        raise ValueError(f"no adapter for provider kind {config.kind!r}") from None
    return cls(name, config, secret, client)

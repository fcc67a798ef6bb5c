"""Builds a provider's adapter from its kind's declaration (``KindSpec.adapter``).

Only the configured kind's adapter module is imported, so a worker loads the code of
one wire format, not all of them.
"""

from __future__ import annotations

from importlib import import_module

from workers.config_record import ProviderRecord
from workers.http_client import HttpClient
from workers.providers.base import ProviderAdapter
from workers.providers.registry import kind_spec

__all__ = ["adapter_class", "create_adapter"]


def adapter_class(kind: str) -> type[ProviderAdapter]:
    """The adapter class kind ``kind`` declares; ValueError for an unknown kind or a bad declaration."""
    module_name, _, class_name = kind_spec(kind).adapter.partition(":")
    cls = getattr(import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ProviderAdapter) and cls.kind == kind):
        # Config validation admits only registered kinds, so this is a bug, not an operator error.
        raise ValueError(f"kind {kind!r} declares adapter {kind_spec(kind).adapter!r}, which is not its adapter")
    return cls


def create_adapter(
    name: str, config: ProviderRecord, secret: str | None, client: HttpClient
) -> ProviderAdapter:
    """The adapter for ``config.kind``, bound to this provider's name, key and HTTP client."""
    return adapter_class(config.kind)(name, config, secret, client)

"""The adapter registry: one adapter class per provider kind."""

from __future__ import annotations

import asyncio

import httpx

from shared.config import PROVIDER_KINDS
from workers.adapters import ADAPTERS, create_adapter
from workers.adapters.anthropic import AnthropicAdapter
from workers.adapters.lmstudio import LMStudioAdapter
from workers.adapters.openai import OpenAIAdapter

from .helpers import SECRET, HttpxTestClient, config


def test_every_kind_has_an_adapter() -> None:
    assert set(ADAPTERS) == set(PROVIDER_KINDS)
    assert ADAPTERS["openai"] is OpenAIAdapter
    assert ADAPTERS["anthropic"] is AnthropicAdapter
    assert ADAPTERS["lmstudio"] is LMStudioAdapter


def test_create_adapter_binds_name_config_secret_and_client() -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as http:
            client = HttpxTestClient(http)
            for kind in PROVIDER_KINDS:
                cfg = config(kind)
                adapter = create_adapter(f"my-{kind}", cfg, SECRET, client)
                assert type(adapter) is ADAPTERS[kind]
                assert (adapter.name, adapter.config, adapter.client) == (f"my-{kind}", cfg, client)
                assert adapter.scrub(f"key {SECRET}") == "key [REDACTED]"

    asyncio.run(main())


def test_capabilities_per_kind() -> None:
    assert AnthropicAdapter.capabilities == frozenset({"chat", "chatStream"})
    assert (
        OpenAIAdapter.capabilities
        == LMStudioAdapter.capabilities
        == frozenset({"chat", "chatStream", "embed"})
    )

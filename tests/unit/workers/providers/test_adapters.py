"""The adapter registry: one adapter class per provider kind."""

from __future__ import annotations

import asyncio

import httpx

from shared.config import PROVIDER_KINDS
from tests.unit.workers.providers.helpers import SECRET, HttpxTestClient, config
from workers.providers.adapters import adapter_class, create_adapter
from workers.providers.anthropic.adapter import AnthropicAdapter
from workers.providers.lmstudio.adapter import LMStudioAdapter
from workers.providers.openai.adapter import OpenAIAdapter


def test_every_kind_has_an_adapter() -> None:
    assert adapter_class("openai") is OpenAIAdapter
    assert adapter_class("anthropic") is AnthropicAdapter
    assert adapter_class("lmstudio") is LMStudioAdapter
    assert {adapter_class(kind).kind for kind in PROVIDER_KINDS} == set(PROVIDER_KINDS)


def test_create_adapter_binds_name_config_secret_and_client() -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as http:
            client = HttpxTestClient(http)
            for kind in PROVIDER_KINDS:
                cfg = config(kind)
                adapter = create_adapter(f"my-{kind}", cfg, SECRET, client)
                assert type(adapter) is adapter_class(kind)
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

"""Ollama discovery: what each model can do beyond text (``ModelInfo.features``), from
``/api/show``'s capabilities, against the Ollama emulator."""

from __future__ import annotations

from emulators.ollama_api import DEFAULT_MODELS
from tests.unit.workers.providers.ollama.test_adapter_features import on_emulator
from workers.providers.ollama.discovery import show_facts


def test_features_come_from_the_servers_capabilities() -> None:
    models, bodies = on_emulator(lambda a: a.list_models())
    assert {m.id: m.features for m in models} == {
        "llama3.2:3b": ["json_schema", "tools"],
        "all-minilm:22m": [],  # the server said: an embedding model can do none of them
        "gemma3:1b": ["json_schema"],
        "qwen3-vl:4b": ["json_schema", "vision", "tools", "reasoning"],
    }
    assert [m.id for m in models] == [m.name for m in DEFAULT_MODELS]
    assert sum(1 for b in bodies if b is not None) == len(DEFAULT_MODELS)  # one /api/show each


def test_a_server_that_does_not_say_leaves_features_unknown() -> None:
    assert show_facts({"details": {"family": "llama"}}).features is None
    assert show_facts({"capabilities": ["completion", "thinking", 3, "insert"]}).features == [
        "json_schema", "reasoning"]

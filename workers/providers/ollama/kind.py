"""Ollama's facts (declarative: imports only ``shared``). Runs locally without a key; loads models on demand."""

from shared.kind_spec import KindSpec

KIND = KindSpec(
    name="ollama",
    title="Ollama",
    capabilities=frozenset({"chat", "chatStream", "embed"}),
    # Ollama has no auth; a key, when configured, is for a reverse proxy in front of it.
    needs_key=False,
    key_header="authorization",
    key_scheme="Bearer ",
    key_env=None,
    default_base_url="http://localhost:11434",
    base_url_style="root",
    added_paths=("/api/chat", "/api/embed", "/api/tags", "/api/ps", "/api/show", "/api", "/v1"),
    joins="/api/chat, /api/embed, /api/tags, /api/ps and /api/show",
    discovers_models=True,
    local=True,  # runs on the operator's machine: a model without a price costs 0
    # Ollama loads a pulled model at its first call, so no listed model needs loading; a model
    # that is not pulled is not listed, and calling it says `ollama pull` (adapter's error map).
    load_hint=None,
    adapter="workers.providers.ollama.adapter:OllamaAdapter",
    # Mapped by the adapter, streams included (chat_wire): images, ``format``, tools (but a
    # forced tool_choice, which Ollama cannot express, is refused by the adapter) and ``think``.
    features=frozenset({"vision", "json_schema", "tools", "reasoning"}),
    # All five live in Ollama's ``options`` under our names (api/types.go Options).
    sampling=frozenset({"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}),
)

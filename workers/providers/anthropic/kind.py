"""Anthropic's facts (declarative: imports only ``shared``). It has no embeddings endpoint."""

from shared.kind_spec import KindSpec

KIND = KindSpec(
    name="anthropic",
    title="Anthropic",
    capabilities=frozenset({"chat", "chatStream"}),
    needs_key=True,
    key_header="x-api-key",
    key_scheme="",
    key_env="ANTHROPIC_API_KEY",
    default_base_url="https://api.anthropic.com",
    base_url_style="root",
    added_paths=("/v1/messages", "/v1/models", "/v1"),
    joins="/v1/messages",
    discovers_models=False,
    load_hint=None,
    adapter="workers.providers.anthropic.adapter:AnthropicAdapter",
)

"""OpenAI's facts (declarative: imports only ``shared``)."""

from shared.kind_spec import KindSpec

KIND = KindSpec(
    name="openai",
    title="OpenAI",
    capabilities=frozenset({"chat", "chatStream", "embed"}),
    needs_key=True,
    key_header="authorization",
    key_scheme="Bearer ",
    key_env="OPENAI_API_KEY",
    default_base_url="https://api.openai.com/v1",
    base_url_style="version",
    added_paths=("/chat/completions", "/embeddings", "/models", "/completions"),
    joins="/chat/completions, /embeddings and /models",
    discovers_models=False,
    load_hint=None,
    adapter="workers.providers.openai.adapter:OpenAIAdapter",
    features=frozenset({"vision", "json_schema", "tools", "reasoning"}),
    sampling=frozenset({"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}),
)

"""LM Studio's facts (declarative: imports only ``shared``). Runs locally, usually without a key."""

from shared.kind_spec import KindSpec

KIND = KindSpec(
    name="lmstudio",
    title="LM Studio",
    capabilities=frozenset({"chat", "chatStream", "embed"}),
    needs_key=False,
    key_header="authorization",
    key_scheme="Bearer ",
    key_env=None,
    default_base_url="http://localhost:1234",
    base_url_style="root",
    added_paths=("/v1/chat/completions", "/v1/embeddings", "/v1/models", "/api/v0/models", "/api/v0", "/v1"),
    joins="/v1/... and /api/v0/models",
    discovers_models=True,
    local=True,  # runs on the operator's machine: a model without a price costs 0
    load_hint="lms load {model}",
    adapter="workers.providers.lmstudio.adapter:LMStudioAdapter",
    # Reasoning is left out: its chat completions document no effort setting (only /v1/responses).
    features=frozenset({"vision", "json_schema", "tools"}),
    # LM Studio's documented chat completion parameters include all of these.
    sampling=frozenset({"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}),
)

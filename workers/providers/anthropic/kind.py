"""Anthropic's facts (declarative: imports only ``shared``). It has no embeddings endpoint."""

from shared.kind_spec import BudgetRange, KindOption, KindSpec

# ``providers.<name>.options.api_version``: what the adapter sends as the anthropic-version header.
API_VERSION = KindOption(
    name="api_version",
    type=str,
    default="2023-06-01",
    description="Sent as the anthropic-version header: the dated API version, e.g. 2023-06-01",
    pattern=r"^\d{4}-\d{2}-\d{2}$",
)

# ``providers.<name>.options.structured_output``: how a JSON-schema answer is asked for.
STRUCTURED_OUTPUT = KindOption(
    name="structured_output",
    type=str,
    default="auto",
    description="How a JSON-schema answer is asked for: native (output_config.format), tool (a forced tool "
                "call, any model), or auto (native for Claude 4.5 and later by model id, else tool)",
    pattern=r"^(auto|native|tool)$",
)


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
    options=(API_VERSION, STRUCTURED_OUTPUT),
    features=frozenset({"vision", "json_schema", "tools", "reasoning"}),
    sampling=frozenset({"stop", "top_p"}),
    moved_options=(("anthropic_version", "api_version"),),
    # Extended thinking (Messages API, thinking.budget_tokens): at least 1024 and less than
    # max_tokens, which the adapter raises to budget + headroom when the call's is not larger;
    # so the budget's ceiling is the model's output limit minus the headroom, where known.
    budget_ranges=(BudgetRange("claude-", 1024),),
    budget_headroom=1024,
)

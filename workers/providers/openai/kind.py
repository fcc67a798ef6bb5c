"""OpenAI's facts (declarative: imports only ``shared``)."""

from shared.kind_spec import KindSpec, SamplingRule

# Reasoning models refuse a temperature ("Unsupported parameter: 'temperature' is not supported
# with this model", or "only the default (1) value is supported"): the o-series, GPT-5.x and
# GPT-6 (which reason by default on Chat Completions). Reported for o-series and GPT-5 models in
# many client bug reports, for gpt-6-sol/-luna since their launch (2026-09-22); checked 2026-12-08.
# Whether they also refuse top_p or the penalties was not confirmed, so those still pass.
NO_TEMPERATURE = tuple(SamplingRule(prefix, temperature=True) for prefix in ("o1", "o3", "o4", "gpt-5", "gpt-6"))

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
    sampling_rules=NO_TEMPERATURE,
)

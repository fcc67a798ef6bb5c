"""Google Gemini's facts (declarative: imports only ``shared``): the native API, not the OpenAI shim."""

from shared.kind_spec import BudgetRange, KindSpec, LevelRule, SamplingRule

# thinkingBudget per model family (Gemini API "Thinking" guide, "Set budget"): 2.5 Pro takes
# 128-32768 and cannot turn thinking off; 2.5 Flash 0-24576; 2.5 Flash-Lite 512-24576 (or 0).
# Our budgets are at least 1 token, so 0 (off) and -1 (dynamic) are never sent.
BUDGETS = (
    BudgetRange("gemini-2.5-pro", 128, 32768),
    BudgetRange("gemini-2.5-flash", 0, 24576),
    BudgetRange("gemini-2.5-flash-lite", 512, 24576),
)

# Gemini 3 models steer thinking by thinkingConfig.thinkingLevel, not a budget (Gemini 3 developer
# guide; Google Cloud model pages, "Supported thinking levels"): 3.5 Flash and 3.5 Flash-Lite take
# minimal to high, 3.7/3.8 Flash and 3.1 Pro low to high (minimal is a 400 there), the first
# Gemini 3 Pro low and high only. Checked 2026-12-08.
LEVELS = (
    LevelRule("gemini-3", ("low", "high")),
    LevelRule("gemini-3-flash", ("minimal", "low", "medium", "high")),
    LevelRule("gemini-3.1-pro", ("low", "medium", "high")),
    LevelRule("gemini-3.5-flash", ("minimal", "low", "medium", "high")),
    LevelRule("gemini-3.7-flash", ("low", "medium", "high")),
    LevelRule("gemini-3.8-flash", ("low", "medium", "high")),
)

# Gemini 3.5 Flash-Lite answers a custom presence or frequency penalty with an error (its
# temperature, topP and topK are accepted and ignored), per its Google Cloud model page.
SAMPLING_RULES = (SamplingRule("gemini-3.5-flash-lite", frozenset({"presence_penalty", "frequency_penalty"})),)

KIND = KindSpec(
    name="gemini",
    title="Google Gemini",
    capabilities=frozenset({"chat", "chatStream", "embed"}),
    needs_key=True,
    key_header="x-goog-api-key",
    key_scheme="",
    key_env="GEMINI_API_KEY",
    default_base_url="https://generativelanguage.googleapis.com/v1beta",
    base_url_style="version",
    added_paths=("/models",),
    joins="/models/MODEL:generateContent (:streamGenerateContent, :batchEmbedContents) and /models",
    discovers_models=False,
    load_hint=None,
    adapter="workers.providers.gemini.adapter:GeminiAdapter",
    # generateContent carries all four (request.py maps them, wire.py reads the replies).
    features=frozenset({"vision", "json_schema", "tools", "reasoning"}),
    sampling=frozenset({"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}),
    budget_ranges=BUDGETS,
    thinking_levels=LEVELS,
    sampling_rules=SAMPLING_RULES,
)

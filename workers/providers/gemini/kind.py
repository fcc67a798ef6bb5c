"""Google Gemini's facts (declarative: imports only ``shared``): the native API, not the OpenAI shim."""

from shared.kind_spec import BudgetRange, KindSpec

# thinkingBudget per model family (Gemini API "Thinking" guide, "Set budget"): 2.5 Pro takes
# 128-32768 and cannot turn thinking off; 2.5 Flash 0-24576; 2.5 Flash-Lite 512-24576 (or 0).
# Our budgets are at least 1 token, so 0 (off) and -1 (dynamic) are never sent. Gemini 3
# models take thinkingLevel; their budgets are sent as asked.
BUDGETS = (
    BudgetRange("gemini-2.5-pro", 128, 32768),
    BudgetRange("gemini-2.5-flash", 0, 24576),
    BudgetRange("gemini-2.5-flash-lite", 512, 24576),
)

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
)

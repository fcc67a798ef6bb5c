"""Google Gemini's facts (declarative: imports only ``shared``): the native API, not the OpenAI shim."""

from shared.kind_spec import KindSpec

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
)

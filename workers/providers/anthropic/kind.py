"""Anthropic's facts (declarative: imports only ``shared`` and pydantic). It has no embeddings endpoint."""

from typing import Annotated

from pydantic import Field

from shared.kind_spec import KindOptions, KindSpec


class AnthropicOptions(KindOptions):
    """``providers.<name>.options`` of an Anthropic provider."""

    api_version: Annotated[str, Field(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Sent as the anthropic-version header: the dated API version, e.g. 2023-06-01",
    )] = "2023-06-01"


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
    options=AnthropicOptions,
    moved_options=(("anthropic_version", "api_version"),),
)

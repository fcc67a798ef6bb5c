"""Prices and the cost of a call: each kind's real usage shape, through its own adapter's parser.

The expected figures are worked out here with ``Fraction`` from the shipped prices as written,
independently of ``gateway.pricing``'s ``Decimal`` arithmetic.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.stack import REPO_ROOT
from gateway.pricing import FREE, PriceBook, Tariff, call_cost
from shared.config import ConfigError, ModelPrice, ProvidersFile, load_providers
from shared.models import Usage
from workers.providers import openai_chat_parts
from workers.providers.anthropic import replies as anthropic_replies
from workers.providers.gemini import wire as gemini_wire
from workers.providers.ollama import adapter as ollama_adapter

SHIPPED = load_providers(REPO_ROOT / "config" / "providers.json")
GEMINI = load_providers(REPO_ROOT / "config" / "providers.gemini.json")


def _price(config: ProvidersFile, provider: str, model: str) -> ModelPrice:
    price = next(m.price for m in config.providers[provider].models if m.id == model)
    assert price is not None, f"{provider}/{model} ships without a price"
    return price


def _expected(price: ModelPrice, fresh: int, cached: int, visible: int, reasoning: int) -> float:
    """USD for these token counts, each at its rate (null cached/reasoning rates: input/output)."""
    def rate(value: float | None, fallback: float) -> Fraction:
        return Fraction(repr(value if value is not None else fallback))
    total = (fresh * rate(price.input, 0) + cached * rate(price.cached_input, price.input)
             + visible * rate(price.output, 0) + reasoning * rate(price.reasoning, price.output))
    return float(total / 1_000_000)


def test_openai_cached_tokens_are_part_of_prompt_tokens_and_reasoning_of_completion_tokens() -> None:
    # gpt-6-luna's reply usage as OpenAI sends it: 1920 of the 2006 prompt tokens came from the cache.
    usage = openai_chat_parts.usage({
        "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0}})
    price = _price(load_providers_emulated(), "openai", "gpt-6-luna")
    cost = call_cost(usage, Tariff.of(price))
    assert cost == _expected(price, fresh=86, cached=1920, visible=108, reasoning=192)
    print(f"gpt-6-luna 2006 in (1920 cached), 300 out (192 reasoning): ${cost}")
    no_cache = call_cost(openai_chat_parts.usage({"prompt_tokens": 2006, "completion_tokens": 300}), Tariff.of(price))
    assert no_cache is not None and cost is not None and no_cache > cost  # the cached ones were billed once, cheaper


def test_openai_embeddings_bill_input_only() -> None:
    usage = openai_chat_parts.usage({"prompt_tokens": 8, "total_tokens": 8})
    price = _price(SHIPPED, "openai", "text-embedding-3-small")
    assert call_cost(usage, Tariff.of(price)) == _expected(price, 8, 0, 0, 0)


def test_anthropic_cache_reads_reported_apart_are_billed_once_at_the_cached_rate() -> None:
    usage = anthropic_replies.usage({"input_tokens": 50, "cache_read_input_tokens": 1000,
                                     "cache_creation_input_tokens": 0, "output_tokens": 400}, Usage())
    assert (usage.input_tokens, usage.cached_input_tokens) == (1050, 1000)
    price = _price(SHIPPED, "anthropic", "claude-haiku-4-5")
    assert call_cost(usage, Tariff.of(price)) == _expected(price, fresh=50, cached=1000, visible=400, reasoning=0)


def test_anthropic_stream_usage_is_message_start_then_cumulative_message_delta() -> None:
    started = anthropic_replies.usage({"input_tokens": 25, "cache_read_input_tokens": 0, "output_tokens": 1}, Usage())
    final = anthropic_replies.usage({"output_tokens": 120}, started)  # message_delta: cumulative output only
    price = _price(SHIPPED, "anthropic", "claude-sonnet-4-6")
    assert call_cost(final, Tariff.of(price)) == _expected(price, 25, 0, 120, 0)


def test_gemini_cached_content_and_thoughts_are_parts_of_prompt_and_output() -> None:
    usage = gemini_wire.usage({"usageMetadata": {
        "promptTokenCount": 1200, "cachedContentTokenCount": 1000, "candidatesTokenCount": 100,
        "thoughtsTokenCount": 50, "totalTokenCount": 1350}}, Usage())
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (
        1200, 1000, 150, 50)
    price = _price(GEMINI, "gemini", "gemini-3.5-flash-lite")  # no cache rate published: cached billed as input
    assert call_cost(usage, Tariff.of(price)) == _expected(price, fresh=200, cached=1000, visible=100, reasoning=50)


def test_gemini_pro_bills_every_token_at_the_long_context_rates_above_its_threshold() -> None:
    # Gemini 2.5 Pro's rates (D176; shut down 2026-12-01, no shipped model has such a tier now),
    # as an operator writes a model with a long-context tier in providers.json.
    price = ModelPrice.model_validate({
        "input": 1.25, "cached_input": 0.125, "output": 10, "checked": "2026-12-08",
        "long_context": {"above_input_tokens": 200_000, "input": 2.5, "cached_input": 0.25, "output": 15}})
    long = price.long_context
    assert long is not None
    at_threshold = gemini_wire.usage({"usageMetadata": {"promptTokenCount": long.above_input_tokens,
                                                        "candidatesTokenCount": 1000}}, Usage())
    above = gemini_wire.usage({"usageMetadata": {"promptTokenCount": long.above_input_tokens + 1,
                                                 "candidatesTokenCount": 1000}}, Usage())
    tariff = Tariff.of(price)
    assert call_cost(at_threshold, tariff) == _expected(price, long.above_input_tokens, 0, 1000, 0)
    long_price = ModelPrice(input=long.input, cached_input=long.cached_input, output=long.output,
                            checked=price.checked)
    assert call_cost(above, tariff) == _expected(long_price, long.above_input_tokens + 1, 0, 1000, 0)


def test_local_kinds_cost_nothing_whatever_they_report() -> None:
    usage = ollama_adapter._usage({"prompt_eval_count": 26, "eval_count": 290})
    assert call_cost(usage, FREE) == 0.0
    assert call_cost(Usage(), FREE) == 0.0  # an LM Studio stream reports no usage (include_usage ignored)


def test_a_priced_model_without_reported_counts_has_an_unknown_cost() -> None:
    assert call_cost(Usage(), Tariff.of(_price(SHIPPED, "openai", "gpt-4o-mini"))) is None


def test_counts_that_contradict_each_other_are_never_billed_twice_or_negative() -> None:
    price = ModelPrice(input=1, cached_input=0.5, output=2, checked="2026-12-08")
    # More cached than input (or reasoning than output) cannot be: at most all of it.
    assert call_cost(Usage(10, 5, 40, 9), Tariff.of(price)) == _expected(price, 0, 10, 0, 5)
    assert call_cost(Usage(-3, None, None, None), Tariff.of(price)) == 0.0


# ---- the price book ---------------------------------------------------------------------


def _book(**models: Any) -> PriceBook:
    return PriceBook(ProvidersFile.model_validate({"providers": {
        "openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K"},
                   "models": [{"id": "priced", "capabilities": ["chat"],
                               "price": {"input": 1, "output": 2, "checked": "2026-12-08"}},
                              {"id": "unpriced", "capabilities": ["chat"]}]},
        "local": {"kind": "ollama", "base_url": "http://127.0.0.1:2",
                  "models": [{"id": "qwen3:32b", "capabilities": ["chat"]},
                             {"id": "rented", "capabilities": ["chat"], **models}]},
    }}, strict=True))


def test_lookup_config_price_then_free_on_a_local_kind_then_unpriced() -> None:
    book = _book(price={"input": 0.5, "output": 0.5, "checked": "2026-12-01", "source": "our GPU rental"})
    assert book.tariff("openai", "priced") == Tariff.of(ModelPrice(input=1, output=2, checked="2026-12-08"))
    assert book.tariff("local", "qwen3:32b") is FREE
    assert book.tariff("local", "discovered-later") is FREE
    assert book.tariff("openai", "unpriced") is None and book.tariff("openai", "never-configured") is None
    # The operator's price wins over a local kind's default of 0.
    rented = book.tariff("local", "rented")
    assert rented is not None and not rented.free and rented.source == "config"
    assert book.unpriced([("openai", "priced"), ("openai", "unpriced"), ("local", "x"), ("openai", "unpriced")]) == [
        "openai/unpriced"]


def test_an_unpriced_model_is_named_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    book = _book()
    with caplog.at_level(logging.WARNING, logger="gateway.pricing"):
        for _ in range(3):
            assert book.cost("openai", "unpriced", Usage(10, 10)) is None
        assert book.cost("openai", "never-configured", Usage(10, 10)) is None
        assert book.cost("openai", "priced", Usage(10, 10)) == 30 / 1_000_000
    flagged = [(r.__dict__["provider"], r.__dict__["model"]) for r in caplog.records
               if r.getMessage() == "price_unknown"]
    assert flagged == [("openai", "unpriced"), ("openai", "never-configured")]


@pytest.mark.parametrize(("price", "message"), [
    ({"input": 1, "output": 2, "checked": "2026-02-30"}, "is not a calendar day"),
    ({"input": 1, "output": 2, "checked": "08/12/2026"}, "YYYY-MM-DD"),
    ({"input": -1, "output": 2, "checked": "2026-12-08"}, "price.input"),
    ({"input": 1, "checked": "2026-12-08"}, "price.output"),
    ({"input": 1, "output": 2}, "price.checked"),
    ({"input": "1", "output": 2, "checked": "2026-12-08"}, "use a number"),
    ({"input": 1, "output": 2, "checked": "2026-12-08", "per": "1k"}, "unknown key"),
])
def test_a_bad_price_stops_start_up_naming_the_key_and_the_fix(tmp_path: Path, price: dict[str, Any],
                                                              message: str) -> None:
    file = tmp_path / "providers.json"
    file.write_bytes(orjson.dumps({"providers": {"openai": {
        "kind": "openai", "base_url": "http://127.0.0.1:1/v1", "secret": {"env": "K"},
        "models": [{"id": "m", "capabilities": ["chat"], "price": price}]}}}))
    with pytest.raises(ConfigError) as raised:
        load_providers(file)
    print(raised.value)
    assert message in str(raised.value) and "providers.openai.models.0.price" in str(raised.value)


def load_providers_emulated() -> ProvidersFile:
    """The emulators' providers.json (gpt-6-luna is there), its base URLs made loadable."""
    data = orjson.loads((REPO_ROOT / "emulators" / "providers.json").read_bytes())
    data.pop("$schema", None)
    for provider in data["providers"].values():
        provider["base_url"] = "http://127.0.0.1:1"
    return ProvidersFile.model_validate(data, strict=True)

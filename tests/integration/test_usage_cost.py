"""Usage and cost through the real stack: tokens and cost counters and the ``tool_call`` line
equal what the provider emulators report, times the configured prices, exactly.

The witness for "what the emulator reports" is the emulator itself, asked directly over its
own wire format with the same prompt (it answers deterministically), read here with each
provider's own counting rule (OpenAI's ``prompt_tokens`` include the cached ones; Anthropic
reports cache reads apart). The expected cost is worked out with ``Fraction`` from the prices
in the stack's providers.json. Each (client, provider, model) series gets exactly one call, in
a stack of its own, so the counters must equal those figures, not merely come close.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import httpx
import orjson
import pytest

from harness.sandbox import Sandbox
from shared.config import ModelPrice
from tests.integration.conftest import clear_faults, inject, run
from tests.integration.exposition import scrape
from tests.polling import wait_until

pytestmark = pytest.mark.integration

# (tool, provider, model): two kinds, a chat and a chatStream each; gpt-6-luna reports reasoning tokens.
CALLS = [("chat", "openai", "gpt-4o-mini"), ("chatStream", "openai", "gpt-6-luna"),
         ("chat", "anthropic", "claude-haiku-4-5"), ("chatStream", "anthropic", "claude-sonnet-4-6")]
_KINDS = ("input", "cached_input", "output", "reasoning")


@pytest.fixture(scope="module")
def ubox() -> Iterator[Sandbox]:
    with Sandbox(heartbeat_s=0.25) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def _price(box: Sandbox, provider: str, model: str) -> ModelPrice:
    price = next(m.price for m in box.providers.providers[provider].models if m.id == model)
    assert price is not None
    return price


def _direct_usage(box: Sandbox, provider: str, model: str, prompt: str) -> dict[str, int | None]:
    """The emulator's own answer to ``prompt``, its usage read by each provider's documented rule
    (None: a count the provider does not report, as Anthropic's thinking tokens without thinking)."""
    url, key = box.emulators.url(provider), box.keys[provider]
    if provider == "openai":
        body = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                          json={"model": model, "messages": [{"role": "user", "content": prompt}]}).json()["usage"]
        return {"input": body["prompt_tokens"], "cached_input": body["prompt_tokens_details"]["cached_tokens"],
                "output": body["completion_tokens"],
                "reasoning": body["completion_tokens_details"]["reasoning_tokens"]}
    body = httpx.post(f"{url}/v1/messages", headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": model, "max_tokens": 1024,
                            "messages": [{"role": "user", "content": prompt}]}).json()["usage"]
    reads, writes = body["cache_read_input_tokens"], body["cache_creation_input_tokens"]
    return {"input": body["input_tokens"] + reads + writes, "cached_input": reads, "output": body["output_tokens"],
            "reasoning": (body.get("output_tokens_details") or {}).get("thinking_tokens")}


def _cost(price: ModelPrice, used: dict[str, int | None]) -> float:
    """USD at ``price``: fresh input, cached input, visible output and reasoning each at its own rate."""
    def rate(value: float | None, fallback: float) -> Fraction:
        return Fraction(repr(value if value is not None else fallback))
    fresh, cached, output, reasoning = (used[kind] or 0 for kind in _KINDS)
    total = ((fresh - cached) * rate(price.input, 0) + cached * rate(price.cached_input, price.input)
             + (output - reasoning) * rate(price.output, 0) + reasoning * rate(price.reasoning, price.output))
    return float(total / 1_000_000)


def _tool_call(box: Sandbox, trace_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for line in (box.log_dir / "gateway.log").read_text().splitlines():
            record = orjson.loads(line)
            if record.get("event") == "tool_call" and record.get("trace_id") == trace_id:
                return dict(record)
        return None
    line = wait_until(found, 10, f"the tool_call line of trace {trace_id}")
    print("log:", orjson.dumps(line).decode())
    return line


async def _call(box: Sandbox, tool: str, provider: str, model: str, prompt: str) -> tuple[str, dict[str, Any]]:
    trace_id = secrets.token_hex(16)
    meta = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    deltas: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        deltas.append(message or "")

    async with box.client() as client:
        result = await client.call_tool(tool, {"prompt": prompt, "provider": provider, "model": model}, meta=meta,
                                        progress_callback=on_progress if tool == "chatStream" else None)
    assert result.structured_content is not None
    if tool == "chatStream":
        assert deltas, "a stream sends its deltas as progress"
    return trace_id, result.structured_content


def test_tokens_and_cost_equal_the_emulators_usage_times_the_price(ubox: Sandbox) -> None:
    before = scrape(ubox)
    done = []
    for tool, provider, model in CALLS:
        prompt = f"Tell me about {provider} pricing {secrets.token_hex(2)}, please"
        trace_id, output = run(_call(ubox, tool, provider, model, prompt))
        assert "error" not in output, output
        done.append((tool, provider, model, prompt, trace_id, output))
    after = scrape(ubox)
    for tool, provider, model, prompt, trace_id, output in done:
        used = _direct_usage(ubox, provider, model, prompt)
        cost = _cost(_price(ubox, provider, model), used)
        print(f"{tool} {provider}/{model}: {used} -> ${cost!r}")
        assert (used["input"] or 0) > 0 and (used["output"] or 0) > 0
        assert (used["reasoning"] or 0) > 0 or model != "gpt-6-luna"  # the reasoning kind is exercised too
        reported = output["usage"]
        assert (reported["input_tokens"], reported["output_tokens"]) == (used["input"], used["output"])
        line = _tool_call(ubox, trace_id)
        assert (line["input_tokens"], line["cached_input_tokens"], line["output_tokens"],
                line["reasoning_tokens"]) == tuple(used[k] for k in _KINDS)
        assert line["cost_usd"] == cost and isinstance(line["cost_usd"], float)
        series = {"client": "demo", "provider": provider, "model": model}
        for kind in _KINDS:
            after.show("llmc_tokens_total", **series, kind=kind)
            assert before.value("llmc_tokens_total", **series, kind=kind) == 0
            assert after.value("llmc_tokens_total", **series, kind=kind) == (used[kind] or 0)
        after.show("llmc_cost_usd_total", **series)
        assert before.value("llmc_cost_usd_total", **series) == 0
        assert after.value("llmc_cost_usd_total", **series) == cost


def test_an_interrupted_stream_counts_what_the_provider_reported_before_the_break(ubox: Sandbox) -> None:
    clear_faults(ubox)
    # Anthropic's message_start reports the input (and 1 output token) before any text.
    inject(ubox, "anthropic", {"path": "/v1/messages", "mode": "error_event", "after_chunks": 2})
    series = {"client": "demo", "provider": "anthropic", "model": "claude-haiku-4-5"}
    before = scrape(ubox)
    prompt = f"A story that breaks {secrets.token_hex(2)}"
    try:
        trace_id, output = run(_call(ubox, "chatStream", "anthropic", "claude-haiku-4-5", prompt))
    finally:
        clear_faults(ubox)
    error = output["error"]
    assert error["type"] == "stream_interrupted" and error["partial_text"]
    used = _direct_usage(ubox, "anthropic", "claude-haiku-4-5", prompt)
    reported = {"input": used["input"], "cached_input": used["cached_input"], "output": 1, "reasoning": None}
    assert error["usage"]["input_tokens"] == reported["input"] and error["usage"]["output_tokens"] == 1
    line = _tool_call(ubox, trace_id)
    assert line["outcome"] == "stream_interrupted"
    assert (line["input_tokens"], line["output_tokens"]) == (reported["input"], 1)
    cost = _cost(_price(ubox, "anthropic", "claude-haiku-4-5"), reported)
    assert line["cost_usd"] == cost
    after = scrape(ubox)  # counted when the call closed, before its answer went out
    after.show("llmc_tokens_total", **series)
    assert (after.value("llmc_tokens_total", **series, kind="input")
            - before.value("llmc_tokens_total", **series, kind="input")) == used["input"]
    assert (after.value("llmc_tokens_total", **series, kind="output")
            - before.value("llmc_tokens_total", **series, kind="output")) == 1
    assert after.value("llmc_cost_usd_total", **series) > before.value("llmc_cost_usd_total", **series)


def test_get_health_lists_no_unpriced_model_when_every_shipped_model_has_a_price(ubox: Sandbox) -> None:
    async def health() -> dict[str, Any]:
        async with ubox.client() as client:
            result = await client.call_tool("getHealth", {})
        assert result.structured_content is not None
        return result.structured_content

    report = run(health())
    assert report["unpriced_models"] == []  # LM Studio's discovered models are local: free, not unpriced
    assert any(w["provider"] == "lmstudio" and w["models"] for w in report["workers"])

"""Each call's reported usage and cost on its record, and unpriced models in getHealth, on ``FakeBroker``.

Fast twins of tests/integration/test_usage_cost.py: the service puts on the call's record what
the answering provider reported (a reply, or a stream that broke after reporting some), and the
record is what the ``tool_call`` line and the token and cost counters are written from.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.call_record import CallRecord
from gateway.fake_broker import FakeCall, FakeEvent
from gateway.tool_schemas import ChatInput, EmbedInput
from shared import errors
from shared.config import ProvidersFile
from shared.models import ChatResult, EmbedResult, TextDelta, Usage
from tests.unit.gateway.service_fakes import PROVIDERS, make_service, run

_PRICE = {"input": 0.15, "cached_input": 0.075, "output": 0.6, "checked": "2026-12-08"}


def _priced() -> ProvidersFile:
    """The fakes' configuration with gpt-4o-mini and the embedding model priced (on ``openai`` only)."""
    data: dict[str, Any] = orjson.loads(orjson.dumps(PROVIDERS))  # not deepcopy: it keeps shared lists shared
    for model in data["providers"]["openai"]["models"]:
        model["price"] = _PRICE if model["id"] == "gpt-4o-mini" else {"input": 0.02, "output": 0, "checked":
                                                                          "2026-12-08"}
    return ProvidersFile.model_validate(data, strict=True)


def _with_usage(usage: Usage) -> Any:
    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.op == "embed":
            return [EmbedResult([[0.5]], call.request["model"], usage).to_wire()]
        deltas: list[FakeEvent] = [TextDelta("hi")] if call.request.get("stream") else []
        return [*deltas, ChatResult("hi", call.request["model"], "stop", usage).to_wire()]
    return handler


def _chat(svc: Any, record: CallRecord, stream: bool = False, **args: Any) -> Any:
    async def progress(count: int, text: str) -> None:
        return None

    return run(svc.chat(ChatInput.model_validate({"prompt": "hi", **args}), None,
                        progress if stream else None, None, record))


def test_a_reply_puts_its_usage_and_exact_cost_on_the_record() -> None:
    svc, _ = make_service(_with_usage(Usage(1200, 300, 1000, None)), _priced())
    for stream in (False, True):
        record = CallRecord(tool="chat", trace_id="t" * 32)
        _chat(svc, record, stream)
        assert record.usage == Usage(1200, 300, 1000, None)
        assert record.cost_usd == 0.000285  # (200 x 0.15 + 1000 x 0.075 + 300 x 0.6) / 1e6, exactly


def test_an_embedding_costs_its_input() -> None:
    svc, _ = make_service(_with_usage(Usage(8, None)), _priced())
    record = CallRecord(tool="embed", trace_id="t" * 32)
    run(svc.embed(EmbedInput.model_validate({"input": ["a"]}), None, None, record))
    assert (record.usage, record.cost_usd) == (Usage(8, None), 1.6e-07)  # 8 x 0.02 / 1e6


def test_an_unpriced_model_has_usage_and_an_unknown_cost() -> None:
    svc, _ = make_service(_with_usage(Usage(10, 5)), _priced())
    record = CallRecord(tool="chat", trace_id="t" * 32)
    _chat(svc, record, provider="anthropic")
    assert (record.usage, record.cost_usd) == (Usage(10, 5), None)


def test_a_stream_that_broke_after_reporting_usage_is_charged_what_was_reported() -> None:
    broken = errors.StreamInterrupted("the stream was cut short", provider="openai", partial_text="hi")
    broken.usage = Usage(40, 2).to_wire()

    def handler(call: FakeCall) -> list[FakeEvent]:
        return [TextDelta("hi"), errors.error_from_payload(broken.to_payload())]  # as it crosses the link

    svc, _ = make_service(handler, _priced())
    record = CallRecord(tool="chatStream", trace_id="t" * 32)
    try:
        _chat(svc, record, stream=True)
    except errors.StreamInterrupted as exc:
        assert exc.usage is not None and exc.usage["input_tokens"] == 40  # the client's error says it too
    else:
        raise AssertionError("the stream should have broken")
    assert (record.usage, record.cost_usd) == (Usage(40, 2), 7.2e-06)  # (40 x 0.15 + 2 x 0.6) / 1e6


def test_a_failed_first_route_costs_nothing_and_the_fallback_s_usage_is_recorded() -> None:
    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.provider == "openai":
            raise errors.Overloaded("busy", provider="openai")
        return _with_usage(Usage(3, 4))(call)

    svc, _ = make_service(handler, _priced())
    record = CallRecord(tool="chat", trace_id="t" * 32)
    output = _chat(svc, record)
    assert output.provider == "anthropic" and record.provider == "anthropic"
    assert (record.usage, record.cost_usd) == (Usage(3, 4), None)  # anthropic's model is unpriced here


def test_health_lists_the_unpriced_models_but_not_a_local_kind_s() -> None:
    svc, _ = make_service(_with_usage(Usage()), _priced())
    assert svc.health().unpriced_models == ["anthropic/claude-haiku-4-5", "backup/gpt-4o-mini"]
    svc_all, _ = make_service(_with_usage(Usage()))
    assert "openai/gpt-4o-mini" in svc_all.health().unpriced_models
    assert not any(m.startswith("lmstudio/") for m in svc_all.health().unpriced_models)

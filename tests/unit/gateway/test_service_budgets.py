"""Budgets in the service, on ``FakeBroker``: the estimate reserved before dispatch, a refusal that
sends nothing, a fallback that gives its reservation back, and settling from the ledger row."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest

from gateway.call_record import CallRecord
from gateway.fake_broker import FakeCall, FakeEvent
from gateway.ledger import LedgerWriter
from gateway.store import StoreSlot
from gateway.store.memory import MemoryStore
from gateway.tool_schemas import ChatInput
from shared import errors
from shared.config import ClientEntry
from shared.models import ChatResult, Usage
from shared.settings import StoreSettings
from tests.unit.gateway.service_fakes import make_service
from tests.unit.gateway.test_service_usage import _priced


def _reply(call: FakeCall) -> list[FakeEvent]:
    return [ChatResult("hi", call.request["model"], "stop", Usage(100, 10, 0, 0)).to_wire()]


def _client(**budget: Any) -> ClientEntry:
    return ClientEntry.model_validate({"token_sha256": hashlib.sha256(b"t").hexdigest(), "budget": budget})


async def _ledgered_service() -> tuple[Any, Any, LedgerWriter]:
    svc, fake = make_service(_reply, _priced())
    ledger = LedgerWriter(StoreSlot(MemoryStore()), StoreSettings(ledger_window_ms=10_000))
    await ledger.start()
    svc.ledger = ledger
    return svc, fake, ledger


async def _call(svc: Any, ledger: LedgerWriter, who: ClientEntry, **args: Any) -> CallRecord:
    record = CallRecord(tool="chat", trace_id="t" * 32, client="alice")
    try:
        await svc.chat(ChatInput.model_validate({"prompt": "hello there", "provider": "openai",
                                                 "model": "gpt-4o-mini", **args}), who, None, None, record)
        outcome = "ok"
    except errors.LLMCallerError as exc:
        outcome = exc.type
    ledger.record_call(record, outcome, None if outcome == "ok" else outcome, record.provider, 0.01)
    return record


def test_the_estimate_is_reserved_before_dispatch_and_the_real_cost_settled_after() -> None:
    async def scenario() -> None:
        svc, fake, ledger = await _ledgered_service()
        record = await _call(svc, ledger, _client(usd_per_day=1.0), max_tokens=50)
        assert record.reservation is not None and not record.reservation.open
        # The estimate: the request's JSON at 3 characters a token, plus max_tokens, at gpt-4o-mini's price.
        assert record.reservation.output_tokens == 50 and record.reservation.input_tokens > 3
        assert record.reservation.usd > record.cost_usd  # the estimate errs high
        day = time.strftime("%Y-%m-%d", time.gmtime())
        assert ledger.budgets.used("usd", ("client", "alice", day)) == pytest.approx(record.cost_usd)
        assert len(fake.calls) == 1
        await ledger.stop()
    asyncio.run(scenario())


def test_a_call_over_budget_is_refused_and_nothing_is_sent() -> None:
    async def scenario() -> None:
        svc, fake, ledger = await _ledgered_service()
        tiny = _client(tokens_per_day=60)
        first = await _call(svc, ledger, tiny, max_tokens=50)
        assert first.usage is not None  # 110 tokens used: over 60
        refused = await _call(svc, ledger, tiny, max_tokens=50)
        assert refused.reservation is None and refused.usage is None
        assert len(fake.calls) == 1  # the refused call never reached a worker
        rows = ledger._rows  # queued for the store: the refusal is in the ledger too
        assert [r.outcome for r in rows] == ["ok", "budget_exceeded"]
        await ledger.stop()
    asyncio.run(scenario())


def test_a_client_without_a_budget_reserves_nothing() -> None:
    async def scenario() -> None:
        svc, _fake, ledger = await _ledgered_service()
        record = await _call(svc, ledger, ClientEntry.model_validate(
            {"token_sha256": hashlib.sha256(b"t").hexdigest()}))
        assert record.reservation is None and record.usage is not None
        await ledger.stop()
    asyncio.run(scenario())

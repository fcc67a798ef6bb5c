"""Streams, progress, interruption, a worker lost mid-call and cancellation, on ``FakeBroker``.

Fast twins of tests/integration/test_resilience.py (no switch after the first chunk, worker
killed mid-call, client cancel), test_workers_fail.py and test_tools.py (progress per delta).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gateway.fake_broker import FakeCall, FakeEvent, Hold
from gateway.tool_schemas import ChatInput
from shared import errors
from shared.models import TextDelta
from tests.polling import wait_until_async
from tests.unit.gateway.service_fakes import answers, chat, failing, make_service, reply, skipped, stream


def test_each_delta_is_forwarded_as_progress_with_its_running_count() -> None:
    svc, fake = make_service(lambda call: reply(call, "Once ", "upon ", "a time"))
    output, seen = stream(svc)
    assert seen == [(1, "Once "), (2, "upon "), (3, "a time")]
    assert (output.text, output.chunks) == ("Once upon a time", 3)
    assert fake.calls[0].op == "chat_stream" and fake.calls[0].request["stream"] is True


def test_a_plain_chat_asks_for_no_stream_and_reports_no_chunk_count() -> None:
    svc, fake = make_service(answers)
    output = chat(svc)
    assert output.chunks is None
    assert fake.calls[0].op == "chat" and fake.calls[0].request["stream"] is False


def test_the_time_to_the_first_chunk_is_observed_once_per_stream() -> None:
    svc, _ = make_service(lambda call: reply(call, "a", "b"), metrics=True)
    stream(svc)
    chat(svc)
    assert svc.metrics is not None
    count = svc.metrics.registry.get_sample_value("llmc_stream_first_chunk_seconds_count", {"provider": "openai"})
    assert count == 1.0, "one stream, one observation; a plain chat makes none"


@pytest.mark.parametrize("error", [
    errors.ProviderError("connection reset"), errors.Overloaded("busy"), errors.WorkerLost("the worker died"),
])
def test_a_failure_after_the_first_chunk_ends_interrupted_with_the_text_sent(error: errors.LLMCallerError) -> None:
    svc, fake = make_service(failing({"openai": error}, after=("Once ", "upon")))
    with pytest.raises(errors.StreamInterrupted) as caught:
        stream(svc)
    exc = caught.value
    assert exc.partial_text == "Once upon" and exc.provider == "openai"
    assert exc.request_id == fake.calls[0].request_id
    assert f"after 2 chunks ({error.type}: {error.message})" in exc.message
    assert [c.provider for c in fake.calls] == ["openai"], "no retry and no switch after the first chunk"


def test_a_stream_failing_before_its_first_chunk_falls_back() -> None:
    svc, fake = make_service(failing({"openai": errors.ConnectionFailed("closed mid-headers")}))
    output, seen = stream(svc)
    assert output.provider == "anthropic" and seen == [(1, "from anthropic")]
    assert skipped(output) == [("openai", "gpt-4o-mini", "connection")]
    assert [c.op for c in fake.calls] == ["chat_stream", "chat_stream"]


def test_a_worker_lost_mid_call_is_reported_then_the_next_call_routes_around_it() -> None:
    def handler(call: FakeCall) -> Iterator[FakeEvent]:
        if call.provider == "openai":
            fake.worker("openai").mark_down()  # the gateway saw the worker's process go away
            yield errors.WorkerLost("the openai worker stopped while handling the call")
            return
        yield from answers(call)

    svc, fake = make_service(handler)  # type: ignore[arg-type]
    with pytest.raises(errors.WorkerLost) as caught:
        chat(svc)
    assert caught.value.retryable and caught.value.provider == "openai"
    assert [c.provider for c in fake.calls] == ["openai"], "accepted work may have cost: not re-run elsewhere"
    output = chat(svc)
    assert output.provider == "anthropic" and skipped(output) == [("openai", "gpt-4o-mini", "worker down")]


def test_a_worker_that_ends_without_a_result_is_an_internal_error() -> None:
    svc, _ = make_service(lambda call: [TextDelta("half")] if call.request["stream"] else [])
    with pytest.raises(errors.StreamInterrupted, match="without a result") as caught:
        stream(svc)
    assert caught.value.partial_text == "half"
    with pytest.raises(errors.InternalError, match="without a result"):
        chat(svc)


def test_a_worker_that_never_answers_times_out_at_the_call_deadline() -> None:
    svc, fake = make_service(lambda call: [Hold()])
    with pytest.raises(errors.Timeout, match="did not finish within the call's deadline"):
        chat(svc, provider="openai", timeout_s=0.05)
    assert fake.closed == [fake.calls[0].request_id], "the abandoned call is cancelled at the worker"


def test_cancelling_a_call_in_flight_closes_the_worker_call_and_frees_its_slot() -> None:
    svc, fake = make_service(lambda call: [Hold()])

    async def scenario() -> None:
        task = asyncio.create_task(svc.chat(ChatInput(prompt="long"), None))
        await wait_until_async(lambda: fake.holding, 5, "the call reached the worker")
        assert svc.inflight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert fake.closed == [fake.calls[0].request_id] and fake.holding == []
    assert svc.inflight == 0
    assert [c.provider for c in fake.calls] == ["openai"], "a cancelled call is not sent elsewhere"


def test_a_caller_going_away_mid_stream_stops_reading_and_closes_the_call() -> None:
    release = Hold()

    def handler(call: FakeCall) -> list[FakeEvent]:
        return [TextDelta("a"), release, *reply(call, "b")]

    svc, fake = make_service(handler)
    seen: list[str] = []

    async def scenario() -> None:
        async def progress(count: int, text: str) -> None:
            seen.append(text)

        task = asyncio.create_task(svc.chat(ChatInput(prompt="hi"), None, progress))
        await wait_until_async(lambda: fake.holding, 5, "the stream paused after its first chunk")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert seen == ["a"] and fake.closed == [fake.calls[0].request_id] and svc.inflight == 0


def test_calls_beyond_the_inflight_limit_are_refused_while_the_others_run() -> None:
    svc, fake = make_service(lambda call: [Hold()])
    svc.max_inflight = 1

    async def scenario() -> None:
        first = asyncio.create_task(svc.chat(ChatInput(prompt="one"), None))
        await wait_until_async(lambda: fake.holding, 5, "the first call reached the worker")
        with pytest.raises(errors.Unavailable, match="limit of 1 calls in flight") as caught:
            await svc.chat(ChatInput(prompt="two"), None)
        assert caught.value.retry_after_s == 1.0
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(scenario())
    assert len(fake.calls) == 1 and svc.inflight == 0

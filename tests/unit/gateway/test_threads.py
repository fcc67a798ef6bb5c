"""Conversation threads (#17) on FakeBroker: history, bounds, isolation, races.

Each test reads what the worker was sent (``fake.calls``): the history must be there, in
the contract's neutral form, whichever provider answers the turn. Each runs on both the
in-process ``MemoryStore`` and the default ``SqliteStore`` (a file in the test's folder).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.call_record import CallRecord
from gateway.fake_broker import FakeBroker, FakeCall, FakeEvent, Hold
from gateway.service import GatewayService
from gateway.store import StoreSlot
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.records import StoreError
from gateway.store.sqlite import SqliteStore
from gateway.threads import LOCAL_CLIENT, NOT_KEPT, ThreadKeeper
from gateway.threads_bounds import ThreadLimits
from gateway.tool_schemas import ChatInput, ChatOutput
from shared import errors
from shared.config import ProvidersFile
from shared.models import ChatResult, TextDelta, Usage
from tests.unit.gateway.service_fakes import PROVIDERS, answers, providers, run
from tests.unit.gateway.test_chat_inputs import PNG, b64, image

MARKER = "[%d earlier turns of this conversation were dropped to keep it within its limits; what follows is the rest.]"
LIMITS = ThreadLimits(max_turns=50, max_tokens=100_000, ttl_s=3600)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def featured() -> ProvidersFile:
    """The fakes' configuration with openai's chat model able to see images and call tools."""
    config = copy.deepcopy(PROVIDERS)
    config["providers"]["openai"]["models"][0] = {"id": "gpt-4o-mini", "capabilities": ["chat", "chatStream"],
                                                  "features": ["vision", "tools"]}
    return ProvidersFile.model_validate(config)


_opened: list[Store] = []
_backend: dict[str, Any] = {}


@pytest.fixture(autouse=True, params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store every ``make`` in the test uses: a MemoryStore, or a fresh SQLite file."""
    files = itertools.count()
    _backend["new"] = (MemoryStore if request.param == "memory"
                       else lambda: SqliteStore(f"sqlite:///{tmp_path}/store-{next(files)}.db"))
    yield str(request.param)
    for store in _opened:
        run(store.close())
    _opened.clear()


def new_store() -> Store:
    store: Store = _backend["new"]()
    run(store.open())
    _opened.append(store)
    return store


def make(handler: Any = answers, limits: ThreadLimits = LIMITS, store: Store | None = None
         ) -> tuple[GatewayService, FakeBroker, Store, Clock]:
    fake = FakeBroker(handler)
    store = store or new_store()
    svc = GatewayService(featured(), fake, store=StoreSlot(store))
    clock = Clock()
    svc.threads = ThreadKeeper(svc.store, limits, clock)
    return svc, fake, store, clock


def record(client: str | None = "alice") -> CallRecord:
    return CallRecord(tool="chat", trace_id="0" * 32, client=client)


async def turn(svc: GatewayService, client: str | None = "alice", progress: Any = None, **args: Any) -> ChatOutput:
    return await svc.chat(ChatInput.model_validate(args), None, progress, None, record(client))


def sent(call: FakeCall) -> list[tuple[str, Any]]:
    """(role, content) of each message a worker was sent."""
    return [(m["role"], m["content"]) for m in call.request["messages"]]


def test_a_thread_sends_its_history_and_may_switch_provider_each_turn() -> None:
    svc, fake, store, _ = make()

    async def go() -> list[ChatOutput]:
        first = await turn(svc, prompt="one", system="be brief", thread="new")
        second = await turn(svc, prompt="two", provider="anthropic", thread_id=first.thread_id)
        third = await turn(svc, prompt="three", provider="backup", thread_id=first.thread_id)
        return [first, second, third]

    first, second, third = run(go())
    assert first.thread_id is not None and first.thread_id.startswith("th_")
    assert [o.thread_id for o in (second, third)] == [first.thread_id] * 2
    assert [c.provider for c in fake.calls] == ["openai", "anthropic", "backup"]
    assert sent(fake.calls[0]) == [("system", "be brief"), ("user", "one")]
    assert sent(fake.calls[2]) == [("system", "be brief"), ("user", "one"), ("assistant", "from openai"),
                                   ("user", "two"), ("assistant", "from anthropic"), ("user", "three")]
    assert third.thread is not None and (third.thread.turn, third.thread.turns, third.thread.dropped_turns) == (2, 3, 0)
    found = run(store.get_thread(first.thread_id, "alice", 1_000_001.0))
    assert found is not None and [(t.provider, t.model) for t in found[1]] == [
        ("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("backup", "gpt-4o-mini")]


def test_an_image_is_kept_once_by_reference_and_sent_again_on_later_turns() -> None:
    svc, fake, store, _ = make()

    async def go() -> str:
        first = await turn(svc, thread="new", messages=[
            {"role": "user", "content": [{"type": "text", "text": "look"}, image()]}])
        assert first.thread_id is not None
        await turn(svc, prompt="and now?", thread_id=first.thread_id)
        await turn(svc, prompt="the picture again?", thread_id=first.thread_id)
        return first.thread_id

    thread_id = run(go())
    third = fake.calls[2].request["messages"]
    assert third[0]["content"] == [{"type": "text", "text": "look"},
                                   {"type": "image", "data": b64(PNG), "mime_type": "image/png"}]
    found = run(store.get_thread(thread_id, "alice", 1_000_001.0))
    assert found is not None and b64(PNG).encode() not in found[1][0].messages  # a reference, not the bytes
    assert run(store.get_blob(thread_id, hashlib.sha256(PNG).hexdigest())) == ("image/png", PNG)
    if isinstance(store, MemoryStore):  # kept once
        assert len(store._blobs) == 1


def test_a_failed_turn_is_not_kept_and_the_error_says_so() -> None:
    fail = {"on": False}

    def handler(call: FakeCall) -> list[FakeEvent]:
        if fail["on"]:
            return [TextDelta("par"), errors.ProviderError("HTTP 500")]
        return answers(call)

    svc, fake, store, _ = make(handler)
    first = run(turn(svc, prompt="one", thread="new"))
    fail["on"] = True
    with pytest.raises(errors.StreamInterrupted) as caught:
        run(turn(svc, prompt="two", thread_id=first.thread_id, progress=_ignore))
    assert caught.value.message.endswith(NOT_KEPT)
    found = run(store.get_thread(str(first.thread_id), "alice", 1_000_001.0))
    assert found is not None and found[0].turns == 1 and found[0].next_seq == 1
    fail["on"] = False
    again = run(turn(svc, prompt="two", thread_id=first.thread_id))
    assert again.thread is not None and again.thread.turn == 1
    assert sent(fake.calls[-1]) == [("user", "one"), ("assistant", "from openai"), ("user", "two")]


async def _ignore(count: int, text: str) -> None:
    return None


def test_a_new_thread_whose_first_call_fails_is_not_created() -> None:
    svc, _, store, _ = make(lambda call: [errors.InvalidRequest("bad")])
    with pytest.raises(errors.InvalidRequest):
        run(turn(svc, prompt="one", thread="new"))
    assert run(store.list_threads("alice", 1_000_001.0)) == []


def test_oldest_turns_are_dropped_past_the_turn_limit_with_a_marker() -> None:
    svc, fake, _, _ = make(limits=ThreadLimits(max_turns=2, max_tokens=100_000, ttl_s=3600))

    async def go() -> list[ChatOutput]:
        first = await turn(svc, prompt="one", thread="new")
        return [first] + [await turn(svc, prompt=p, thread_id=first.thread_id) for p in ("two", "three", "four")]

    outputs = run(go())
    states = [(o.thread.turns, o.thread.dropped_turns, o.thread.dropped_now) for o in outputs if o.thread]
    assert states == [(1, 0, 0), (2, 0, 0), (2, 1, 1), (2, 2, 1)]
    assert sent(fake.calls[3]) == [("system", MARKER % 2), ("user", "three"), ("assistant", "from openai"),
                                   ("user", "four")]


def test_the_token_limit_drops_turns_by_their_reported_usage() -> None:
    def handler(call: FakeCall) -> list[FakeEvent]:
        # The provider counts the whole request as input: 10 per message sent.
        usage = Usage(input_tokens=10 * len(call.request["messages"]), output_tokens=5)
        return [ChatResult("ok", call.request["model"], "stop", usage).to_wire()]

    svc, fake, _, _ = make(handler, ThreadLimits(max_turns=50, max_tokens=40, ttl_s=3600))

    async def go() -> list[ChatOutput]:
        first = await turn(svc, prompt="one", thread="new")
        return [first] + [await turn(svc, prompt=p, thread_id=first.thread_id) for p in ("two", "three", "four")]

    outputs = run(go())
    # Turn 0: 10 in + 5 out. Turn 1: 30 in - 15 already counted = 15, + 5 = 20 -> 35 in all;
    # turn 2 likewise -> 55 (the limit bounds what is sent: history and the new input).
    # Turn 3 (about 2 tokens of its own) would send 57: turns 0 and 1 go; it is sent with turn 2
    # and the marker (4 messages: 40 in - 20 counted = 20, + 5) -> 45.
    assert [(o.thread.tokens, o.thread.dropped_now) for o in outputs if o.thread] == [
        (15, 0), (35, 0), (55, 0), (45, 2)]
    assert sent(fake.calls[3]) == [("system", MARKER % 2), ("user", "three"), ("assistant", "ok"),
                                   ("user", "four")]


def test_a_turn_alone_over_the_token_limit_is_refused_before_any_request() -> None:
    svc, fake, _, _ = make(limits=ThreadLimits(max_turns=50, max_tokens=10, ttl_s=3600))
    with pytest.raises(errors.InvalidRequest, match="over the thread limit of 10"):
        run(turn(svc, prompt="x" * 100, thread="new"))
    assert fake.calls == []


def test_another_clients_thread_is_not_found() -> None:
    svc, fake, _, _ = make()
    first = run(turn(svc, prompt="one", thread="new"))
    with pytest.raises(errors.NotFound, match="no such thread for this client"):
        run(turn(svc, "bob", prompt="mine now", thread_id=first.thread_id))
    assert len(fake.calls) == 1
    local = run(turn(svc, None, prompt="one", thread="new"))
    assert run(svc.store.get().get_thread(str(local.thread_id), LOCAL_CLIENT, 1_000_001.0)) is not None


def test_a_thread_expires_after_its_ttl_unless_continued() -> None:
    svc, _, _, clock = make(limits=ThreadLimits(max_turns=50, max_tokens=100_000, ttl_s=100))
    first = run(turn(svc, prompt="one", thread="new"))
    clock.now += 90
    second = run(turn(svc, prompt="two", thread_id=first.thread_id))  # refreshed: 100 s from now
    assert second.thread is not None and second.thread.expires_at == clock.now + 100
    clock.now += 90
    run(turn(svc, prompt="three", thread_id=first.thread_id))
    clock.now += 101
    with pytest.raises(errors.NotFound):
        run(turn(svc, prompt="four", thread_id=first.thread_id))


def test_a_second_concurrent_turn_is_refused_before_any_request_and_nothing_is_lost() -> None:
    hold = Hold()
    holding = {"on": False}

    def handler(call: FakeCall) -> list[FakeEvent]:
        return [hold, *answers(call)] if holding["on"] else answers(call)

    svc, fake, store, _ = make(handler)

    async def go() -> tuple[ChatOutput, BaseException | None]:
        first = await turn(svc, prompt="one", thread="new")
        holding["on"] = True
        slow = asyncio.create_task(turn(svc, prompt="two", thread_id=first.thread_id))
        while not fake.holding:
            await asyncio.sleep(0)
        holding["on"] = False
        try:
            await turn(svc, prompt="racing", thread_id=first.thread_id)
            refused = None
        except errors.Unavailable as exc:
            refused = exc
        hold.release.set()
        return await slow, refused

    kept, refused = run(go())
    assert refused is not None and "this thread is busy" in refused.message and refused.retryable
    assert len(fake.calls) == 2  # the refused turn cost nothing
    found = run(store.get_thread(str(kept.thread_id), "alice", 1_000_001.0))
    assert found is not None and found[0].turns == 2


def test_a_turn_recorded_through_another_gateway_first_makes_this_one_fail_cleanly() -> None:
    """Two gateways on one store: the conditional append refuses the later turn."""
    hold = Hold()
    shared_store = new_store()
    slow_svc, slow_fake, _, _ = make(lambda call: [hold, *answers(call)], store=shared_store)
    fast_svc, _, _, _ = make(store=shared_store)

    async def go() -> tuple[str, BaseException]:
        first = await turn(fast_svc, prompt="one", thread="new")
        slow = asyncio.create_task(turn(slow_svc, prompt="slow", thread_id=first.thread_id))
        while not slow_fake.holding:
            await asyncio.sleep(0)
        await turn(fast_svc, prompt="fast", thread_id=first.thread_id)
        hold.release.set()
        with pytest.raises(errors.Unavailable) as caught:
            await slow
        return str(first.thread_id), caught.value

    thread_id, error = run(go())
    assert "this thread changed while this turn ran" in error.message
    found = run(shared_store.get_thread(thread_id, "alice", 1_000_001.0))
    assert found is not None and found[0].turns == 2 and b"fast" in found[1][1].messages


def test_a_tool_result_answers_a_call_kept_in_the_thread() -> None:
    call_id = "call_1"

    def handler(call: FakeCall) -> list[FakeEvent]:
        if call.request["messages"][-1]["role"] == "tool":
            return answers(call)
        return [{"text": "", "model": call.request["model"], "finish_reason": "tool_calls", "usage": {},
                 "tool_calls": [{"id": call_id, "name": "get_weather", "arguments": {"city": "Oslo"}}]}]

    svc, fake, _, _ = make(handler)
    tools = [{"name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
    first = run(turn(svc, prompt="weather in Oslo?", tools=tools, thread="new"))
    assert first.tool_calls is not None
    run(turn(svc, thread_id=first.thread_id, tools=tools,
             messages=[{"role": "tool", "tool_call_id": call_id, "content": "sunny"}]))
    last = fake.calls[-1].request["messages"]
    assert last[1]["tool_calls"][0]["id"] == call_id
    assert last[2] == {"role": "tool", "content": "sunny", "tool_call_id": call_id, "name": "get_weather"}
    with pytest.raises(errors.InvalidRequest, match="names no call of this thread"):
        run(turn(svc, thread_id=first.thread_id, tools=tools,
                 messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}]))


def test_without_a_store_a_thread_call_is_unavailable_and_a_plain_call_is_unaffected() -> None:
    fake = FakeBroker(answers)
    svc = GatewayService(providers(), fake, store=StoreSlot(None, "store.db is locked"))
    with pytest.raises(errors.Unavailable, match=r"store is not available: store\.db is locked"):
        run(turn(svc, prompt="one", thread="new"))
    assert fake.calls == []
    assert run(turn(svc, prompt="plain")).text == "from openai"


class _Untouchable:
    """A store whose every method fails the test (its name is all the slot reads when built)."""

    backend = "untouchable"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a plain call touched the store ({name})")


def test_a_plain_call_never_touches_the_store() -> None:
    fake = FakeBroker(answers)
    svc = GatewayService(providers(), fake, store=StoreSlot(_Untouchable()))  # type: ignore[arg-type]
    output = run(turn(svc, prompt="plain"))
    assert output.thread_id is None and "thread_id" not in output.structured()


def test_thread_and_thread_id_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ChatInput.model_validate({"prompt": "x", "thread": "new", "thread_id": "th_" + "0" * 32})
    with pytest.raises(ValueError, match="thread_id"):
        ChatInput.model_validate({"prompt": "x", "thread_id": "../etc"})


class _Failing(MemoryStore):
    """A store whose writes fail as a locked SQLite file does."""

    async def append_turn(self, *args: Any, **kwargs: Any) -> bool:
        raise StoreError("store /x/store.db is locked by another process")


def test_a_store_failing_mid_turn_is_a_clear_unavailable_error() -> None:
    svc, _, _, _ = make(store=_Failing())
    with pytest.raises(errors.Unavailable) as caught:
        run(turn(svc, prompt="one", thread="new"))
    assert caught.value.message == ("the gateway's store failed: store /x/store.db is locked by another process "
                                    f"{NOT_KEPT}")
    assert caught.value.retryable

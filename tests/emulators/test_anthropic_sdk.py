"""The official ``anthropic`` SDK, with strict response validation, against the Anthropic emulator."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types import MessageParam, RawMessageDeltaEvent

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from tests.emulators.conftest import ANTHROPIC_KEY

GREETING = "Hello from the Anthropic emulator. You said: "
MESSAGES: list[MessageParam] = [{"role": "user", "content": "hi claude"}]


def sdk(emu: BackgroundEmulators, api_key: str = ANTHROPIC_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emu.url("anthropic"), api_key=api_key, _strict_response_validation=True,
                               max_retries=0, timeout=5.0)


@pytest.fixture
def ant(emu: BackgroundEmulators) -> anthropic.Anthropic:
    return sdk(emu)


def test_messages_create(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="claude-sonnet-4-5", max_tokens=100, system="Be kind.", messages=MESSAGES)
    assert message.content[0].type == "text"
    assert message.content[0].text == GREETING + "hi claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 9)
    assert message.model == "claude-sonnet-4-5"


def test_max_tokens_cut(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(model="claude-haiku-4-5", max_tokens=2, messages=MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == "Hello from"
    assert message.stop_reason == "max_tokens"


def test_stream_events_in_order(ant: anthropic.Anthropic) -> None:
    events = list(ant.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True))
    kinds = [getattr(event, "type", None) for event in events]
    deltas = kinds.count("content_block_delta")
    # ping events are consumed by the SDK; the rest arrive in the real API's order.
    assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                     "content_block_stop", "message_delta", "message_stop"]
    assert deltas == 9
    final = events[-2]
    assert isinstance(final, RawMessageDeltaEvent)
    assert final.delta.stop_reason == "end_turn" and final.usage.output_tokens == 9


def test_stream_helper(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == GREETING + "hi claude"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.usage.output_tokens == 9 and final.usage.input_tokens == 2


def test_models_list(ant: anthropic.Anthropic) -> None:
    models = list(ant.models.list())
    assert [m.id for m in models] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    page = ant.models.list(limit=1)
    assert page.has_more and page.last_id == "claude-sonnet-4-5"
    assert [m.id for m in page.iter_pages().__next__().data] == ["claude-sonnet-4-5"]
    assert ant.models.retrieve("claude-haiku-4-5").display_name == "Claude Haiku 4.5"


def test_auth_and_not_found_are_typed(emu: BackgroundEmulators, ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        sdk(emu, api_key="sk-ant-wrong").messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        ant.messages.create(model="claude-9", max_tokens=5, messages=MESSAGES)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "exc", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (402, anthropic.PaymentRequiredError, "billing_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
    ],
)
def test_status_faults_are_typed(
    ant: anthropic.Anthropic, controls: dict[str, EmulatorControl], status: int, exc: type[Exception],
    error_type: str,
) -> None:
    controls["anthropic"].add_faults({"mode": "status", "status": status, "headers": {"retry-after": "2"}})
    with pytest.raises(exc) as err:
        ant.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert isinstance(err.value, anthropic.APIStatusError)
    assert err.value.body["error"]["type"] == error_type  # type: ignore[index]
    assert err.value.response.headers["retry-after"] == "2"


def test_error_event_after_200(ant: anthropic.Anthropic, controls: dict[str, EmulatorControl]) -> None:
    controls["anthropic"].add_faults({"mode": "error_event", "after_chunks": 3})
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as err,
        ant.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as stream,
    ):
        received.extend(stream.text_stream)
    assert received == ["Hello ", "from ", "the "]
    assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]

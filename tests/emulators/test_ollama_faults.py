"""Every shared fault kind from the Ollama emulator, in Ollama's shapes, as the worker's adapter sees it.

The adapter runs on the worker's own HTTP client (aiohttp) without the retry layer, so each
fault shows up as exactly the taxonomy error the worker starts from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.control import EmulatorControl
from emulators.ollama_api import DEFAULT_MODELS
from emulators.server import BackgroundEmulators, EmulatorConfig
from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, Message, TextDelta
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.adapters import create_adapter

KEY = "sk-proxy-faults-5c0ffee0123456789"
REQUEST = ChatRequest(model=DEFAULT_MODELS[0].name, messages=[Message("user", "hello there")])
FULL = "Hello from the Ollama emulator. You said: hello there"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(ports={"ollama": 0})) as running:
        yield running


@pytest.fixture
def control(server: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(server.url("ollama")) as ctl:
        ctl.reset()
        yield ctl
        ctl.reset()


def _call(server: BackgroundEmulators, stream: bool, read_s: float = 5.0) -> Any:
    """One chat through the adapter: the result (text, or deltas and result), or the error raised."""
    cfg = ProviderConfig.model_validate({"kind": "ollama", "base_url": server.url("ollama"),
                                         "secret": {"env": "OLLAMA_PROXY_KEY"}})

    async def main() -> Any:
        client = AiohttpClient(Timeouts(connect_s=5.0, read_s=read_s, pool_s=5.0), max_connections=4)
        async with contextlib.aclosing(client):
            adapter = create_adapter("ollama-1", cfg, KEY, client)
            try:
                if not stream:
                    return await adapter.chat(REQUEST)
                items: list[TextDelta | ChatResult] = []
                async with contextlib.aclosing(adapter.stream_chat(REQUEST)) as parts:
                    items.extend([item async for item in parts])
                return items
            except errors.LLMCallerError as exc:
                return exc

    return asyncio.run(main())


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("status", "headers", "cls", "phrase"), [
    (429, {"retry-after": "1"}, errors.RateLimited, "too many requests"),
    (503, {}, errors.Overloaded, "server busy"),
    (500, {}, errors.ProviderError, "llama runner process has terminated"),
    (404, {}, errors.NotFound, "`ollama pull emulated`"),
    (400, {}, errors.InvalidRequest, "invalid request"),
])
def test_status_faults(server: BackgroundEmulators, control: EmulatorControl, stream: bool, status: int,
                       headers: dict[str, str], cls: type[errors.LLMCallerError], phrase: str) -> None:
    control.add_faults({"mode": "status", "status": status, "headers": headers})
    error = _call(server, stream)
    assert type(error) is cls and phrase in error.message, error
    if headers:
        assert error.retry_after_s == 1.0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("spec", "phrase"), [
    ({"mode": "drop"}, "closed the connection before a complete response"),
    ({"mode": "close_mid_headers"}, "closed the connection before a complete response"),
    ({"mode": "html"}, ""),
])
def test_no_usable_answer_is_a_retryable_provider_error(server: BackgroundEmulators, control: EmulatorControl,
                                                       stream: bool, spec: dict[str, Any], phrase: str) -> None:
    control.add_faults(spec)
    error = _call(server, stream)
    assert type(error) is errors.ProviderError and error.retryable and phrase in error.message, error
    if spec["mode"] == "html":
        assert ("text/html page instead of an NDJSON stream" if stream else "not JSON") in error.message


def test_delay_then_the_answer_or_a_timeout(server: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "delay", "delay_s": 0.2}, {"mode": "delay", "delay_s": 3})
    assert _call(server, False).text == FULL
    assert type(_call(server, False, read_s=0.5)) is errors.Timeout


def test_malformed_plain_answer(server: BackgroundEmulators, control: EmulatorControl) -> None:
    control.add_faults({"mode": "malformed"})
    error = _call(server, False)
    assert type(error) is errors.ProviderError and "not JSON" in error.message


@pytest.mark.parametrize(("spec", "cls"), [
    ({"mode": "truncated_stream"}, errors.StreamInterrupted),
    ({"mode": "truncated_stream", "close_connection": True}, errors.StreamInterrupted),
    ({"mode": "malformed"}, errors.StreamInterrupted),
    ({"mode": "error_event"}, errors.StreamInterrupted),
    ({"mode": "silent_stream"}, errors.Timeout),
])
def test_stream_faults_after_text_carry_the_partial_text(
        server: BackgroundEmulators, control: EmulatorControl, spec: dict[str, Any],
        cls: type[errors.LLMCallerError]) -> None:
    control.add_faults({**spec, "after_chunks": 2})
    error = _call(server, True, read_s=0.5)
    assert type(error) is cls and error.partial_text == "Hello from ", error


@pytest.mark.parametrize("mode", ["truncated_stream", "malformed", "error_event"])
def test_stream_faults_before_text_are_retryable_provider_errors(
        server: BackgroundEmulators, control: EmulatorControl, mode: str) -> None:
    control.add_faults({"mode": mode, "after_chunks": 0})
    error = _call(server, True)
    assert type(error) is errors.ProviderError and error.retryable and not error.partial_text, error


def test_a_key_echoed_in_an_error_is_scrubbed(server: BackgroundEmulators, control: EmulatorControl) -> None:
    for form in ("whole", "no_prefix", "bearer"):
        control.add_faults({"mode": "echo_key_in_error", "status": 401, "key_form": form})
        error = _call(server, False)
        assert type(error) is errors.AuthError and KEY not in error.message and KEY[-12:] not in error.message


def test_no_fault_full_stream(server: BackgroundEmulators, control: EmulatorControl) -> None:
    items = _call(server, True)
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == FULL
    assert isinstance(items[-1], ChatResult) and items[-1].finish_reason == "stop"

"""Conversation threads (#17) through the real stack and the official MCP SDK client.

Each turn's request body, as the provider emulator received it, must hold the whole
thread in that provider's own wire form (so a provider switch carries the history), and
an image of turn 1 must travel again, bytes and all, on turn 3. Threads are per client,
bounded (oldest turns dropped with a marker), one turn at a time; their text never
reaches the gateway's log, the audit trail, the metrics or the traces.

The store is the default one: SQLite in the sandbox's state folder, so a thread also
survives a gateway restart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from emulators.control import EmulatorControl
from harness.sandbox import Sandbox
from shared.config import ClientRegistry
from shared.files import write_json_atomic
from shared.tokens import hash_token, new_token
from shared.tool_names import CHAT, CHAT_STREAM, GET_HEALTH, THREADS
from tests.integration.conftest import run
from tests.integration.test_tracing import OtlpReceiver

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
MAX_TURNS = 4
# What no log, metric or trace may ever contain: it is only ever in prompts.
SECRET_WORDS = "zebra-quartz-thread-canary"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    otlp.start()
    yield otlp
    otlp.stop()


@pytest.fixture(scope="module")
def box(receiver: OtlpReceiver) -> Iterator[Sandbox]:
    env = {"LLMC_THREAD_MAX_TURNS": str(MAX_TURNS),
           "LLMC_OTEL_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with Sandbox(chunk_delay_s=0.01, heartbeat_s=0.25, run_providers=("openai", "anthropic", "gemini"),
                 env=env) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


async def _call(box: Sandbox, tool: str, arguments: dict[str, Any], token: str | None = None
                ) -> tuple[bool, dict[str, Any]]:
    async with box.client(token=token) as client:
        result = await client.call_tool(tool, arguments)
    assert result.structured_content is not None, result.content
    return bool(result.is_error), result.structured_content


def call(box: Sandbox, tool: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """A successful call's structured content."""
    is_error, content = run(_call(box, tool, arguments, token))
    assert not is_error, content
    return content


def error(box: Sandbox, tool: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """A failed call's error object."""
    is_error, content = run(_call(box, tool, arguments, token))
    assert is_error, content
    return dict(content["error"])


def last_body(box: Sandbox, provider: str) -> dict[str, Any]:
    with EmulatorControl(box.emulators.url(provider)) as control:
        body = control.stats()["last_body"]
    assert isinstance(body, dict)
    return body


def texts(provider: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each message of a request body, in the provider's wire form."""
    if provider == "gemini":
        system = [("system", p["text"]) for p in (body.get("systemInstruction") or {}).get("parts", [])]
        return system + [(c["role"], p["text"]) for c in body["contents"] for p in c["parts"] if "text" in p]
    found = [("system", body["system"])] if isinstance(body.get("system"), str) else []
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            found.append((message["role"], content))
        else:
            found.extend((message["role"], p["text"]) for p in content if p.get("type") == "text")
    return found


def test_three_turns_and_two_provider_switches_carry_the_whole_history(box: Sandbox) -> None:
    first = call(box, CHAT, {"prompt": "one", "system": "be brief", "provider": "openai", "thread": "new"})
    thread_id = first["thread_id"]
    assert thread_id.startswith("th_") and first["thread"]["turn"] == 0
    assert texts("openai", last_body(box, "openai")) == [("system", "be brief"), ("user", "one")]
    second = call(box, CHAT, {"prompt": "two", "provider": "openai", "thread_id": thread_id})
    assert texts("openai", last_body(box, "openai")) == [
        ("system", "be brief"), ("user", "one"), ("assistant", first["text"]), ("user", "two")]
    third = call(box, CHAT, {"prompt": "three", "provider": "anthropic", "thread_id": thread_id})
    assert texts("anthropic", last_body(box, "anthropic")) == [
        ("system", "be brief"), ("user", "one"), ("assistant", first["text"]), ("user", "two"),
        ("assistant", second["text"]), ("user", "three")]
    fourth = call(box, CHAT, {"prompt": "four", "provider": "gemini", "thread_id": thread_id})
    assert texts("gemini", last_body(box, "gemini")) == [
        ("system", "be brief"), ("user", "one"), ("model", first["text"]), ("user", "two"),
        ("model", second["text"]), ("user", "three"), ("model", third["text"]), ("user", "four")]
    assert (fourth["provider"], fourth["thread"]["turns"], fourth["thread"]["dropped_turns"]) == ("gemini", 4, 0)
    listed = call(box, THREADS, {})["threads"]
    mine = next(t for t in listed if t["thread_id"] == thread_id)
    assert mine["models"] == ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-6", "gemini/gemini-3.5-flash-lite"]
    assert mine["turns"] == 4 and mine["tokens"] > 0 and mine["expires_at"] > time.time()


def test_chat_stream_threads_and_an_image_of_turn_one_is_sent_again_on_turn_three(box: Sandbox) -> None:
    data = base64.b64encode(PNG).decode()

    async def scenario() -> list[dict[str, Any]]:
        outputs = []
        seen: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")

        async with box.client() as client:
            turns: list[dict[str, Any]] = [
                {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"},
                                                           {"type": "image", "data": data, "mimeType": "image/png"}]}],
                 "thread": "new"},
                {"prompt": "and then?"}, {"prompt": "what was in the picture?", "provider": "gemini"}]
            for arguments in turns:
                if outputs:
                    arguments["thread_id"] = outputs[0]["thread_id"]
                result = await client.call_tool(CHAT_STREAM, arguments, progress_callback=on_progress)
                assert not result.is_error and result.structured_content is not None, result.content
                outputs.append(result.structured_content)
        assert seen  # the text came as progress notifications too
        return outputs

    outputs = run(scenario())
    assert [o["thread"]["turn"] for o in outputs] == [0, 1, 2] and outputs[0]["chunks"] > 0
    body = last_body(box, "gemini")
    images = [p["inlineData"] for c in body["contents"] for p in c["parts"] if "inlineData" in p]
    assert images == [{"mimeType": "image/png", "data": data}]


def test_another_clients_thread_is_not_found(box: Sandbox) -> None:
    thread_id = call(box, CHAT, {"prompt": "mine", "thread": "new"})["thread_id"]
    other = _register(box, "other")
    failed = error(box, CHAT, {"prompt": "let me in", "thread_id": thread_id}, token=other)
    assert failed["type"] == "not_found" and "no such thread for this client" in failed["message"]
    assert all(t["thread_id"] != thread_id for t in call(box, THREADS, {}, token=other)["threads"])
    assert call(box, THREADS, {"action": "delete", "thread_id": thread_id}, token=other)["deleted"] is False
    assert call(box, CHAT, {"prompt": "still mine", "thread_id": thread_id})["thread"]["turn"] == 1
    assert call(box, THREADS, {"action": "delete", "thread_id": thread_id})["deleted"] is True
    assert error(box, CHAT, {"prompt": "gone", "thread_id": thread_id})["type"] == "not_found"


def _register(box: Sandbox, name: str) -> str:
    """Add a client to the running stack's registry; its token, once the gateway accepts it."""
    token = new_token()
    file = box.stack.settings.registry_file
    registry = orjson.loads(file.read_bytes())
    registry["clients"][name] = {"token_sha256": hash_token(token), "created_at": int(time.time())}
    ClientRegistry.model_validate(registry)
    write_json_atomic(file, registry, mode=0o600)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(Exception):  # refused (401) until the gateway re-reads the registry
            if not run(_call(box, GET_HEALTH, {}, token))[0]:
                return token
        assert time.monotonic() < deadline, "the gateway did not pick up the new client"
        time.sleep(0.2)


def test_past_the_turn_limit_the_oldest_turns_go_and_a_marker_says_so(box: Sandbox) -> None:
    thread_id = call(box, CHAT, {"prompt": "t0", "provider": "anthropic", "thread": "new"})["thread_id"]
    outputs = [call(box, CHAT, {"prompt": f"t{n}", "provider": "anthropic", "thread_id": thread_id})
               for n in range(1, MAX_TURNS + 2)]
    assert [(o["thread"]["turns"], o["thread"]["dropped_now"], o["thread"]["dropped_turns"]) for o in outputs] == [
        (2, 0, 0), (3, 0, 0), (4, 0, 0), (4, 1, 1), (4, 1, 2)]
    sent = texts("anthropic", last_body(box, "anthropic"))
    assert sent[0] == ("system", "[2 earlier turns of this conversation were dropped to keep it within its "
                                 "limits; what follows is the rest.]")
    assert [text for role, text in sent if role == "user"] == ["t2", "t3", "t4", "t5"]


def test_a_concurrent_turn_is_refused_and_a_failed_turn_is_not_kept(box: Sandbox) -> None:
    thread_id = call(box, CHAT, {"prompt": "start", "thread": "new"})["thread_id"]
    with EmulatorControl(box.emulators.url("openai")) as control:
        control.add_faults({"mode": "delay", "delay_s": 5, "path": "/v1/chat/completions"})
        before = control.stats()["requests"]

    async def race() -> tuple[tuple[bool, dict[str, Any]], tuple[bool, dict[str, Any]]]:
        slow = asyncio.create_task(_call(box, CHAT, {"prompt": "slow", "thread_id": thread_id}))
        await asyncio.to_thread(_wait_for_request, box, "openai", before)  # the slow turn is at the provider
        fast = await _call(box, CHAT, {"prompt": "fast", "thread_id": thread_id})
        return await slow, fast

    (slow_error, slow), (fast_error, fast) = run(race())
    assert not slow_error and slow["thread"]["turn"] == 1
    assert fast_error and fast["error"]["type"] == "unavailable" and fast["error"]["retryable"]
    assert "this thread is busy" in fast["error"]["message"]
    with EmulatorControl(box.emulators.url("openai")) as control:
        control.add_faults({"mode": "status", "status": 400, "path": "/v1/chat/completions"})
    failed = error(box, CHAT, {"prompt": "doomed", "thread_id": thread_id})
    assert failed["message"].endswith("The thread is unchanged: this turn was not kept.")
    after = call(box, CHAT, {"prompt": "next", "thread_id": thread_id})
    assert after["thread"]["turn"] == 2
    assert [t for r, t in texts("openai", last_body(box, "openai")) if r == "user"] == ["start", "slow", "next"]


def _wait_for_request(box: Sandbox, provider: str, before: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with EmulatorControl(box.emulators.url(provider)) as control:
        while control.stats()["requests"] <= before:
            assert time.monotonic() < deadline, "the slow turn never reached the provider"
            time.sleep(0.05)


def test_a_threads_text_never_reaches_logs_audit_metrics_or_traces(box: Sandbox, receiver: OtlpReceiver) -> None:
    thread_id = call(box, CHAT, {"prompt": f"remember {SECRET_WORDS}", "thread": "new"})["thread_id"]
    call(box, CHAT_STREAM, {"prompt": "what did I say?", "thread_id": thread_id})
    assert SECRET_WORDS in str(last_body(box, "openai"))  # the history went to the provider, and only there
    failed = error(box, CHAT, {"prompt": f"again {SECRET_WORDS}", "thread_id": thread_id, "provider": "nosuch"})
    assert SECRET_WORDS not in failed["message"]
    time.sleep(1.0)  # the span batches (100 ms) and log lines land
    metrics = httpx.get(box.url.removesuffix("/mcp") + "/metrics").text
    assert SECRET_WORDS not in metrics
    for file in [box.log_dir / "gateway.log", box.log_dir / "audit.jsonl", *box.log_dir.glob("worker-*.log")]:
        if file.exists():
            assert SECRET_WORDS not in file.read_text(errors="replace"), file
    with receiver.lock:
        assert receiver.bodies and all(SECRET_WORDS.encode() not in body for body in receiver.bodies)


def test_a_thread_continues_after_a_gateway_restart() -> None:
    with Sandbox(heartbeat_s=0.25, run_providers=("openai",)) as sandbox:
        sandbox.wait_workers_up()
        thread_id = call(sandbox, CHAT, {"prompt": "before", "thread": "new"})["thread_id"]
        sandbox.stack.rpc().supervisor.stopProcess("gateway")
        sandbox.stack.rpc().supervisor.startProcess("gateway")
        sandbox.stack.wait_ready()
        sandbox.wait_workers_up()
        after = call(sandbox, CHAT, {"prompt": "after", "thread_id": thread_id})
        assert after["thread"]["turn"] == 1
        assert [t for r, t in texts("openai", last_body(sandbox, "openai")) if r == "user"] == ["before", "after"]

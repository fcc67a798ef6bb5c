"""A provider echoing its key in any spelling: no 8-character run of it reaches a client, log, metric or audit line.

Table-driven over the spellings in ``emulators.faults.KEY_FORMS`` (whole, without its
prefix, its tail, with a space inside, upper-cased, URL-encoded, base64, Basic auth,
``Bearer <key>``, the providers' masked forms), through the real stack: the emulator
answers with the key it was sent, spelt that way, as a plain error (chat) and as an
in-stream error after some text (chatStream); then every client answer, every log
file (gateway, workers, supervisord), audit.jsonl and /metrics are searched.

The leak finder below is independent of shared.redact: it decodes what it finds
(percent-escapes, base64 at every offset) and compares case-insensitively with spaces
removed, so it would see the key in every spelling the emulator produces (checked
first, so a blind finder cannot pass the test). A run counts when it holds at least one
character of the key's random part: the sandbox keys are ``sk-emu-PROVIDER-<hex>``, and
runs wholly inside that public prefix ("anthropi") are the provider's name, which every
message about the provider rightly carries.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.faults import KEY_FORMS, key_in_form
from harness.sandbox import Sandbox
from tests.integration.conftest import clear_faults, inject, run

pytestmark = pytest.mark.integration

RUN = 8  # the shortest run of a key that counts as a leak
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
_LOUD = {"LLMC_LOG_LEVEL_GATEWAY": "DEBUG", "LLMC_LOG_LEVEL_WORKER_OPENAI": "DEBUG",
         "LLMC_LOG_LEVEL_WORKER_ANTHROPIC": "DEBUG"}


def _runs(key: str) -> set[str]:
    """The key's 8-character runs that reach into its random part (after ``sk-emu-PROVIDER-``)."""
    random_from = key.rindex("-") + 1
    lowered = key.lower()
    return {lowered[i:i + RUN] for i in range(len(lowered) - RUN + 1) if i + RUN > random_from}


def _decoded_base64(text: str) -> Iterator[str]:
    for token in _B64_TOKEN.findall(text):
        token = token.rstrip("=").replace("-", "+").replace("_", "/")
        for skip in range(4):
            part = token[skip:]
            part = part[: len(part) - len(part) % 4]
            try:
                yield base64.b64decode(part, validate=True).decode("latin-1")
            except (binascii.Error, ValueError):
                continue


def leaked_runs(key: str, text: str) -> set[str]:
    """Every 8-character run of ``key`` found in ``text`` in any of the spellings."""
    runs = _runs(key)
    found: set[str] = set()
    for candidate in (text, urllib.parse.unquote(text), *_decoded_base64(text)):
        folded = "".join(candidate.split()).lower()
        found.update(run for run in runs if run in folded)
    return found


@pytest.fixture(scope="module")
def loud_box() -> Iterator[Sandbox]:
    """A stack of its own, logging at DEBUG, so every line a call can produce is searched."""
    with Sandbox(chunk_delay_s=0.01, heartbeat_s=0.25, env=dict(_LOUD)) as sandbox:
        sandbox.wait_workers_up()
        yield sandbox


def test_the_leak_finder_sees_every_spelling() -> None:
    key = "sk-emu-openai-" + "0123456789abcdef01234567"
    for form in KEY_FORMS:
        assert leaked_runs(key, f"error: {key_in_form(key, form)}."), form
    assert not leaked_runs(key, "Incorrect API key provided: [REDACTED].")


def _answer_text(result: Any) -> str:
    return str(result.structured_content) + " " + " ".join(str(block) for block in result.content)


async def _echo_calls(box: Sandbox) -> list[tuple[str, str, str, str]]:
    """(provider, form, tool, answer text) for each form, each provider, chat and chatStream."""
    answers = []
    async with box.client() as client:
        for provider, path in _PATHS.items():
            key = box.keys[provider]
            for form in KEY_FORMS:
                inject(box, provider, {"path": path, "mode": "echo_key_in_error", "status": 401, "key_form": form})
                result = await client.call_tool("chat", {"prompt": "leak?", "provider": provider})
                assert result.is_error and result.structured_content["error"]["type"] == "auth", _answer_text(result)
                answers.append((provider, form, "chat", _answer_text(result)))
                inject(box, provider, {"path": path, "mode": "error_event", "after_chunks": 2,
                                       "error_type": "invalid_request_error",
                                       "message": f"bad key {key_in_form(key, form)} in request"})
                streamed = await client.call_tool("chatStream", {"prompt": "leak?", "provider": provider})
                assert streamed.is_error, _answer_text(streamed)
                answers.append((provider, form, "chatStream", _answer_text(streamed)))
        health = await client.call_tool("getHealth", {})
        answers.append(("-", "-", "getHealth", _answer_text(health)))
    return answers


def test_no_run_of_the_key_in_any_spelling_reaches_client_logs_audit_or_metrics(loud_box: Sandbox) -> None:
    box = loud_box
    try:
        answers = run(_echo_calls(box))
    finally:
        clear_faults(box)
    for provider in _PATHS:
        pending = httpx.get(f"{box.emulators.url(provider)}/_emulator/faults").json()["faults"]
        assert pending == [], f"{provider} did not answer every echo: {pending}"
    metrics = httpx.get(f"http://127.0.0.1:{box.stack.settings.port}/metrics").text
    files = {p.name: p.read_text(errors="replace") for p in box.log_dir.iterdir() if p.is_file()}
    assert {"gateway.log", "worker-openai.log", "worker-anthropic.log", "audit.jsonl"} <= set(files)
    haystacks = {f"{tool} via {provider}, key as {form}": text for provider, form, tool, text in answers}
    haystacks.update(files)
    haystacks["/metrics"] = metrics
    leaks = {
        (where, provider): sorted(found)
        for where, text in haystacks.items()
        for provider in _PATHS
        if (found := leaked_runs(box.keys[provider], text))
    }
    redacted = sum("[REDACTED]" in text for _, _, _, text in answers)
    print(f"{len(KEY_FORMS)} spellings x {len(_PATHS)} providers x 2 tools = {len(answers) - 1} echoing calls; "
          f"{len(haystacks)} haystacks, {sum(len(t) for t in haystacks.values())} characters searched; "
          f"answers showing [REDACTED]: {redacted}; leaks found: {len(leaks)}")
    for (where, provider), found in leaks.items():
        print(f"  LEAK of the {provider} key in {where}: {found[:3]}")
    assert not leaks
    chat_answers = [text for _, _, tool, text in answers if tool == "chat"]
    assert all("rejected the API key" in text for text in chat_answers)  # the message survived, only the key went

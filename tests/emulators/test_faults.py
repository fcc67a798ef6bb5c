"""Each fault mode, checked on the wire with plain httpx (the SDKs would hide the details)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import httpx2
import orjson
import pytest

from emulators.control import EmulatorControl
from emulators.faults import key_in_form
from emulators.server import BackgroundEmulators
from tests.emulators.conftest import ANTHROPIC_HEADERS, ANTHROPIC_KEY, OPENAI_HEADERS, OPENAI_KEY

CHAT = "/v1/chat/completions"


def chat_body(stream: bool = False, model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "fault test"}]}


def claude_body(stream: bool = False) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "fault test"}]}


def read_lines(response: httpx.Response) -> tuple[list[str], Exception | None]:
    """Non-empty lines of a stream, and the error that ended it early, if any."""
    lines: list[str] = []
    try:
        for line in response.iter_lines():
            if line:
                lines.append(line)
    except httpx.HTTPError as exc:
        return lines, exc
    return lines, None


def openai_stream(http: httpx.Client, emu: BackgroundEmulators, read_timeout: float = 5.0
                  ) -> tuple[int, list[str], Exception | None]:
    timeout = httpx.Timeout(5.0, read=read_timeout)
    with http.stream("POST", emu.url("openai") + CHAT, json=chat_body(True), headers=OPENAI_HEADERS,
                     timeout=timeout) as response:
        lines, error = read_lines(response)
        return response.status_code, lines, error


def content_deltas(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("data: {") and '"content"' in line:
            payload = orjson.loads(line[6:])
            text = payload["choices"][0]["delta"].get("content")
            if text:
                out.append(text)
    return out


# ---- status ----------------------------------------------------------------------------


def test_status_with_headers_and_times(http: httpx.Client, emu: BackgroundEmulators,
                                       controls: dict[str, EmulatorControl]) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    controls["openai"].add_faults({"mode": "status", "status": 503, "times": 2,
                                   "headers": {"retry-after": date, "x-should-retry": "false"}})
    for _ in range(2):
        response = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS)
        assert response.status_code == 503
        assert response.headers["retry-after"] == date and response.headers["x-should-retry"] == "false"
        assert response.headers["x-request-id"].startswith("req_")
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "server_error"
    assert http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS).status_code == 200


def test_status_overrides(http: httpx.Client, emu: BackgroundEmulators, controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "status", "status": 400, "error_type": "invalid_request_error",
                                   "error_code": "context_length_exceeded", "message": "too long"})
    error = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS).json()["error"]
    assert error == {"message": "too long", "type": "invalid_request_error", "param": None,
                     "code": "context_length_exceeded"}


def test_path_match_fifo_and_stream_only_skip(http: httpx.Client, emu: BackgroundEmulators,
                                              controls: dict[str, EmulatorControl]) -> None:
    control = controls["openai"]
    control.add_faults(
        {"mode": "truncated_stream"},  # stream-only: a plain call passes it by
        {"mode": "status", "status": 500, "path": "/v1/embeddings"},
        {"mode": "status", "status": 429},
    )
    assert http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS).status_code == 429
    assert http.get(emu.url("openai") + "/v1/models", headers=OPENAI_HEADERS).status_code == 200
    pending = control.pending_faults()
    assert [f["mode"] for f in pending] == ["truncated_stream", "status"]
    embed = {"model": "text-embedding-3-small", "input": "x"}
    assert http.post(emu.url("openai") + "/v1/embeddings", json=embed, headers=OPENAI_HEADERS).status_code == 500
    _, lines, _ = openai_stream(http, emu)
    assert "data: [DONE]" not in lines
    assert control.pending_faults() == []


def test_anthropic_status_shape(http: httpx.Client, emu: BackgroundEmulators,
                                controls: dict[str, EmulatorControl]) -> None:
    controls["anthropic"].add_faults({"mode": "status", "status": 529})
    response = http.post(emu.url("anthropic") + "/v1/messages", json=claude_body(), headers=ANTHROPIC_HEADERS)
    assert response.status_code == 529
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert response.headers["request-id"].startswith("req_")


# ---- timing faults ------------------------------------------------------------------------


def test_delay_then_normal_answer(http: httpx.Client, emu: BackgroundEmulators,
                                  controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "delay", "delay_s": 0.3})
    started = time.monotonic()
    response = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_delay_trips_a_client_timeout(http: httpx.Client, emu: BackgroundEmulators,
                                      controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "delay", "delay_s": 30})
    with pytest.raises(httpx.ReadTimeout):
        http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS, timeout=0.3)
    # The emulator noticed the client leaving and is free for the next call.
    assert http.get(emu.url("openai") + "/v1/models", headers=OPENAI_HEADERS).status_code == 200


def test_silent_stream_goes_quiet(http: httpx.Client, emu: BackgroundEmulators,
                                  controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "silent_stream", "after_chunks": 2})
    status, lines, error = openai_stream(http, emu, read_timeout=0.4)
    assert status == 200
    assert isinstance(error, httpx.ReadTimeout)
    assert content_deltas(lines) == ["Hello ", "from "]
    assert len(lines) == 3  # role chunk + two deltas, then nothing


def test_short_silence_resumes(http: httpx.Client, emu: BackgroundEmulators,
                               controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "silent_stream", "after_chunks": 1, "delay_s": 0.2})
    _, lines, error = openai_stream(http, emu)
    assert error is None and lines[-1] == "data: [DONE]"
    assert "".join(content_deltas(lines)) == "Hello from the OpenAI emulator. You said: fault test"


# ---- broken streams -------------------------------------------------------------------------


def test_truncated_stream_ends_cleanly_without_done(http: httpx.Client, emu: BackgroundEmulators,
                                                    controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "truncated_stream", "after_chunks": 3})
    status, lines, error = openai_stream(http, emu)
    assert status == 200 and error is None  # HTTP-wise a complete 200
    assert content_deltas(lines) == ["Hello ", "from ", "the "]
    assert "data: [DONE]" not in lines


def test_truncated_stream_can_cut_the_connection(http: httpx.Client, emu: BackgroundEmulators,
                                                 controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "truncated_stream", "after_chunks": 1, "close_connection": True})
    _, lines, error = openai_stream(http, emu)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert content_deltas(lines) == ["Hello "]


def test_anthropic_truncated_stream_lacks_message_stop(http: httpx.Client, emu: BackgroundEmulators,
                                                       controls: dict[str, EmulatorControl]) -> None:
    controls["anthropic"].add_faults({"mode": "truncated_stream", "after_chunks": 2})
    with http.stream("POST", emu.url("anthropic") + "/v1/messages", json=claude_body(True),
                     headers=ANTHROPIC_HEADERS) as response:
        lines, error = read_lines(response)
    assert error is None
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]


def test_malformed_plain_and_stream(http: httpx.Client, emu: BackgroundEmulators,
                                    controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "malformed"}, {"mode": "malformed", "after_chunks": 1})
    response = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        orjson.loads(response.content)
    _, lines, _ = openai_stream(http, emu)
    assert lines[-1] == "data: {not json" and "data: [DONE]" not in lines


def test_error_events(http: httpx.Client, emu: BackgroundEmulators, controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "error_event", "after_chunks": 1})
    controls["anthropic"].add_faults({"mode": "error_event", "after_chunks": 0, "error_type": "api_error"})
    _, lines, _ = openai_stream(http, emu)
    assert orjson.loads(lines[-1].removeprefix("data: "))["error"]["type"] == "server_error"
    with http.stream("POST", emu.url("anthropic") + "/v1/messages", json=claude_body(True),
                     headers=ANTHROPIC_HEADERS) as response:
        assert response.status_code == 200
        alines, _ = read_lines(response)
    assert alines[-2] == "event: error"
    assert orjson.loads(alines[-1].removeprefix("data: ")) == {
        "type": "error", "error": {"type": "api_error", "message": "Overloaded"}}
    assert "event: content_block_delta" not in alines


# ---- connection and auth faults -------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_drop_closes_without_response(http: httpx.Client, emu: BackgroundEmulators,
                                      controls: dict[str, EmulatorControl], provider: str) -> None:
    controls[provider].add_faults({"mode": "drop"})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.get(emu.url(provider) + "/v1/models", headers={**OPENAI_HEADERS, **ANTHROPIC_HEADERS})
    assert controls[provider].stats()["requests"] == 1


def lmstudio_body(stream: bool = False) -> dict[str, Any]:
    return chat_body(stream, model="qwen2.5-7b-instruct")


_PATHS = {"openai": (CHAT, chat_body), "anthropic": ("/v1/messages", claude_body), "lmstudio": (CHAT, lmstudio_body)}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_close_mid_headers_sends_half_the_headers_then_hangs_up(
        emu: BackgroundEmulators, controls: dict[str, EmulatorControl], provider: str, stream: bool) -> None:
    import socket

    path, body = _PATHS[provider]
    controls[provider].add_faults({"mode": "close_mid_headers"})
    payload = orjson.dumps(body(stream))
    request = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               f"authorization: Bearer {OPENAI_KEY}\r\nx-api-key: {ANTHROPIC_KEY}\r\n"
               f"anthropic-version: 2023-06-01\r\ncontent-length: {len(payload)}\r\n\r\n").encode() + payload
    with socket.create_connection(("127.0.0.1", emu.ports[provider]), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    print(f"\n{provider} stream={stream}: received {received!r} then EOF")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n" not in received
    assert controls[provider].stats()["requests"] == 1


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_html_answers_a_page_with_200(http: httpx.Client, emu: BackgroundEmulators,
                                      controls: dict[str, EmulatorControl], provider: str, stream: bool) -> None:
    path, body = _PATHS[provider]
    controls[provider].add_faults({"mode": "html"}, {"mode": "html", "status": 502})
    headers = {**OPENAI_HEADERS, **ANTHROPIC_HEADERS}
    first = http.post(emu.url(provider) + path, json=body(stream), headers=headers)
    second = http.post(emu.url(provider) + path, json=body(stream), headers=headers)
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    assert first.text.startswith("<!DOCTYPE html>") and second.status_code == 502
    assert http.post(emu.url(provider) + path, json=body(stream), headers=headers).status_code == 200


def test_echo_key_in_error(http: httpx.Client, emu: BackgroundEmulators,
                           controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "echo_key_in_error"})
    controls["anthropic"].add_faults({"mode": "echo_key_in_error", "status": 400})
    response = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS)
    assert response.status_code == 401 and OPENAI_KEY in response.json()["error"]["message"]
    response = http.post(emu.url("anthropic") + "/v1/messages", json=claude_body(), headers=ANTHROPIC_HEADERS)
    assert response.status_code == 400 and ANTHROPIC_KEY in response.json()["error"]["message"]


@pytest.mark.parametrize("form", ["upper", "url_all", "basic_auth", "masked_openai"])
def test_echo_key_in_error_spells_the_key_as_asked(http: httpx.Client, emu: BackgroundEmulators,
                                                   controls: dict[str, EmulatorControl], form: str) -> None:
    controls["openai"].add_faults({"mode": "echo_key_in_error", "key_form": form})
    response = http.post(emu.url("openai") + CHAT, json=chat_body(), headers=OPENAI_HEADERS)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == f"Incorrect API key provided: {key_in_form(OPENAI_KEY, form)}."


def test_an_unknown_key_form_is_refused(controls: dict[str, EmulatorControl]) -> None:
    with pytest.raises(httpx2.HTTPStatusError):  # EmulatorControl uses the MCP SDK's client
        controls["openai"].add_faults({"mode": "echo_key_in_error", "key_form": "rot13"})


# ---- control API and stats ------------------------------------------------------------------


def test_stats_count_api_calls_and_mask_keys(http: httpx.Client, emu: BackgroundEmulators,
                                             controls: dict[str, EmulatorControl]) -> None:
    http.post(emu.url("anthropic") + "/v1/messages", json=claude_body(), headers=ANTHROPIC_HEADERS)
    http.get(emu.url("anthropic") + "/v1/models", headers={**ANTHROPIC_HEADERS, "x-trace": "abc"})
    stats = controls["anthropic"].stats()
    assert stats["requests"] == 2
    assert stats["by_path"] == {"/v1/messages": 1, "/v1/models": 1}
    assert stats["last_headers"]["x-api-key"] == "[set]"
    assert stats["last_headers"]["x-trace"] == "abc"
    assert ANTHROPIC_KEY not in orjson.dumps(stats).decode()
    controls["anthropic"].reset_stats()
    assert controls["anthropic"].stats() == {"requests": 0, "by_path": {}, "faults": 0, "faults_by_path": {},
                                             "faults_by_mode": {}, "last_headers": {}, "last_body": None,
                                             "streams_left": 0, "last_left_at": None}


def test_stats_count_the_faults_requests_were_given(http: httpx.Client, emu: BackgroundEmulators,
                                                    controls: dict[str, EmulatorControl]) -> None:
    """Only requests that take a fault count: a stream-only fault waits for a stream, and
    ``every`` lets the requests between strikes pass uncounted."""
    controls["openai"].add_faults({"mode": "truncated_stream"}, {"mode": "status", "status": 500, "every": 2})
    assert http.get(emu.url("openai") + "/v1/models", headers=OPENAI_HEADERS).status_code == 200  # 1st of every 2
    assert http.get(emu.url("openai") + "/v1/models", headers=OPENAI_HEADERS).status_code == 500
    with http.stream("POST", emu.url("openai") + CHAT, json=chat_body(True), headers=OPENAI_HEADERS) as response:
        response.read()
    stats = controls["openai"].stats()
    assert (stats["requests"], stats["faults"]) == (3, 2)
    assert stats["faults_by_path"] == {"/v1/models": 1, CHAT: 1}
    assert stats["faults_by_mode"] == {"status": 1, "truncated_stream": 1}
    controls["openai"].reset()


@pytest.mark.parametrize("spec", [{"mode": "status"}, {"mode": "nope"}, {"mode": "drop", "tims": 2},
                                  {"mode": "drop", "times": 0}])
def test_bad_fault_specs_are_rejected(http: httpx.Client, emu: BackgroundEmulators, spec: dict[str, Any]) -> None:
    response = http.post(emu.url("openai") + "/_emulator/faults", json={"faults": [spec]})
    assert response.status_code == 400
    assert http.get(emu.url("openai") + "/_emulator/faults").json() == {"faults": []}

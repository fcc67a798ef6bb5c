"""Auth, validation and routing errors of the OpenAI and Anthropic emulators, on the wire."""

from __future__ import annotations

import httpx
import pytest

from emulators.server import BackgroundEmulators
from tests.emulators.conftest import ANTHROPIC_HEADERS, ANTHROPIC_KEY, OPENAI_HEADERS

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
CLAUDE = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer sk-nope-000000000"}, {"authorization": "Basic x"}])
def test_openai_auth(http: httpx.Client, emu: BackgroundEmulators, headers: dict[str, str]) -> None:
    response = http.post(emu.url("openai") + "/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_api_key", None)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b"{not json", 400, None),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
        ({"model": "gpt-4o-mini"}, 400, "messages"),
        ({**CHAT, "max_tokens": 0}, 400, "max_tokens"),
    ],
)
def test_openai_validation(http: httpx.Client, emu: BackgroundEmulators, body: object, status: int,
                           param: str | None) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = http.post(emu.url("openai") + "/v1/chat/completions", headers=OPENAI_HEADERS, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert response.json()["error"]["param"] == param


def test_openai_unknown_path_and_method(http: httpx.Client, emu: BackgroundEmulators) -> None:
    response = http.get(emu.url("openai") + "/v1/chat/completions", headers=OPENAI_HEADERS)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({"anthropic-version": "2023-06-01"}, 401, "authentication_error"),
        ({"x-api-key": "wrong", "anthropic-version": "2023-06-01"}, 401, "authentication_error"),
        ({"x-api-key": ANTHROPIC_KEY}, 400, "invalid_request_error"),
        ({"authorization": f"Bearer {ANTHROPIC_KEY}", "anthropic-version": "2026-10-21"}, 200, None),
    ],
)
def test_anthropic_headers(http: httpx.Client, emu: BackgroundEmulators, headers: dict[str, str], status: int,
                           error_type: str | None) -> None:
    response = http.post(emu.url("anthropic") + "/v1/messages", json=CLAUDE, headers=headers)
    assert response.status_code == status
    if error_type:
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == error_type


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
    ],
)
def test_anthropic_validation(http: httpx.Client, emu: BackgroundEmulators, change: dict[str, object],
                              message: str) -> None:
    body = {k: v for k, v in {**CLAUDE, **change}.items() if v is not None}
    response = http.post(emu.url("anthropic") + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}


def test_anthropic_has_no_embeddings(http: httpx.Client, emu: BackgroundEmulators) -> None:
    response = http.post(emu.url("anthropic") + "/v1/embeddings", json={"input": "x"}, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_anthropic_rate_limit_headers(http: httpx.Client, emu: BackgroundEmulators) -> None:
    response = http.post(emu.url("anthropic") + "/v1/messages", json=CLAUDE, headers=ANTHROPIC_HEADERS)
    for name in ("limit", "remaining", "reset"):
        assert response.headers[f"anthropic-ratelimit-requests-{name}"]
    assert response.headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_system_param_counts_as_input(http: httpx.Client, emu: BackgroundEmulators) -> None:
    plain = http.post(emu.url("anthropic") + "/v1/messages", json=CLAUDE, headers=ANTHROPIC_HEADERS).json()
    with_system = http.post(emu.url("anthropic") + "/v1/messages", headers=ANTHROPIC_HEADERS,
                            json={**CLAUDE, "system": [{"type": "text", "text": "three more words"}]}).json()
    assert with_system["usage"]["input_tokens"] == plain["usage"]["input_tokens"] + 3

"""LM Studio quirks: 200 for unknown paths, native model list, model loading states."""

from __future__ import annotations

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators


def chat(http: httpx.Client, emu: BackgroundEmulators, model: str | None = "qwen2.5-7b-instruct") -> httpx.Response:
    body: dict[str, object] = {"messages": [{"role": "user", "content": "hello"}]}
    if model is not None:
        body["model"] = model
    return http.post(emu.url("lmstudio") + "/v1/chat/completions", json=body)


@pytest.mark.parametrize(("method", "path"), [("GET", "/foo"), ("POST", "/v1/completions/x"),
                                              ("GET", "/v1/chat/completions")])
def test_unknown_path_is_http_200(http: httpx.Client, emu: BackgroundEmulators, method: str, path: str) -> None:
    response = http.request(method, emu.url("lmstudio") + path)
    assert response.status_code == 200
    assert response.json() == {"error": f"Unexpected endpoint or method. ({method} {path})"}


def test_native_model_list(http: httpx.Client, emu: BackgroundEmulators) -> None:
    data = http.get(emu.url("lmstudio") + "/api/v0/models").json()
    assert data["object"] == "list"
    by_id = {m["id"]: m for m in data["data"]}
    assert (by_id["qwen2.5-7b-instruct"]["type"], by_id["qwen2.5-7b-instruct"]["state"]) == ("llm", "loaded")
    assert (by_id["nomic-embed-text-v1.5"]["type"], by_id["nomic-embed-text-v1.5"]["state"]) == ("embeddings", "loaded")
    assert by_id["llama-3.2-3b-instruct"]["state"] == "not-loaded"
    for entry in data["data"]:
        assert set(entry) == {"id", "object", "type", "publisher", "arch", "compatibility_type", "quantization",
                              "state", "max_context_length", "capabilities"}
    assert by_id["qwen2.5-7b-instruct"]["capabilities"] == ["tool_use"]
    single = http.get(emu.url("lmstudio") + "/api/v0/models/nomic-embed-text-v1.5").json()
    assert single == by_id["nomic-embed-text-v1.5"]


def test_no_auth_needed_and_no_rate_headers(http: httpx.Client, emu: BackgroundEmulators) -> None:
    response = chat(http, emu)
    assert response.status_code == 200
    assert not any(name.startswith("x-ratelimit") for name in response.headers)


def test_model_choice_errors(http: httpx.Client, emu: BackgroundEmulators) -> None:
    assert chat(http, emu, model=None).json()["model"] == "qwen2.5-7b-instruct"  # falls back to a loaded llm
    for model, code in [("llama-3.2-3b-instruct", "model_not_loaded"), ("no-such-model", "model_not_found")]:
        response = chat(http, emu, model)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == code
    assert chat(http, emu, "nomic-embed-text-v1.5").status_code == 400
    embed = http.post(emu.url("lmstudio") + "/v1/embeddings", json={"model": "qwen2.5-7b-instruct", "input": "x"})
    assert embed.status_code == 400


def test_models_appear_and_disappear(http: httpx.Client, emu: BackgroundEmulators,
                                     controls: dict[str, EmulatorControl]) -> None:
    lms = controls["lmstudio"]
    lms.set_models([{"id": "llama-3.2-3b-instruct", "state": "not-loaded"}])
    assert http.get(emu.url("lmstudio") + "/v1/models").json()["data"] == []
    response = chat(http, emu, "llama-3.2-3b-instruct")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("No models loaded")
    assert response.json()["error"]["type"] == "invalid_request_error"

    full = lms.set_models([{"id": "phi-4", "arch": "phi3", "max_context_length": 16384}])
    assert full[0]["state"] == "loaded" and full[0]["compatibility_type"] == "gguf"
    assert [m["id"] for m in http.get(emu.url("lmstudio") + "/v1/models").json()["data"]] == ["phi-4"]
    assert chat(http, emu, "phi-4").json()["choices"][0]["message"]["content"].endswith("You said: hello")


@pytest.mark.parametrize("entry", [{"id": ""}, {"id": "x", "type": "tts"}, {"id": "x", "state": "busy"},
                                   {"id": "x", "colour": "red"}])
def test_bad_model_entries_rejected(http: httpx.Client, emu: BackgroundEmulators, entry: dict[str, str]) -> None:
    response = http.put(emu.url("lmstudio") + "/_emulator/models", json={"data": [entry]})
    assert response.status_code == 400
    assert len(http.get(emu.url("lmstudio") + "/api/v0/models").json()["data"]) == 3  # unchanged


def test_stream_has_no_usage_even_when_asked(http: httpx.Client, emu: BackgroundEmulators) -> None:
    body = {"model": "qwen2.5-7b-instruct", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}]}
    with http.stream("POST", emu.url("lmstudio") + "/v1/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert not any('"usage"' in line for line in lines)

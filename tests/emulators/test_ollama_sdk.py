"""The official ``ollama`` client against the Ollama emulator.

The client's response models ignore unknown fields, so each answer is also checked
field by field against them (``_strict``): every field the emulator sends is one the
client knows (by name or alias), with the type it declares; the exceptions are fields
Ollama sends (``api/types.go``) that the client drops: ``name`` in ``/api/tags``, and a
tool call's ``id`` and its function's ``index``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import orjson
import pytest
from pydantic import BaseModel

from emulators.control import EmulatorControl
from emulators.ollama_api import DEFAULT_MODELS
from emulators.server import BackgroundEmulators

GREETING = "Hello from the Ollama emulator. You said: "
CHAT_MODEL, EMBED_MODEL, IDLE_MODEL, FEATURE_MODEL = (m.name for m in DEFAULT_MODELS)
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi llama"}]


@pytest.fixture
def client(emu: BackgroundEmulators, controls: dict[str, EmulatorControl]) -> Iterator[ollama.Client]:
    controls["ollama"].set_models([{"name": m.name, "family": m.family, "capabilities": list(m.capabilities)}
                                   for m in DEFAULT_MODELS])
    yield ollama.Client(host=emu.url("ollama"), timeout=5.0)


# Fields Ollama sends that the client's models lack (see the module docstring).
_DROPPED: dict[type[BaseModel], set[str]] = {
    ollama.ListResponse.Model: {"name"},
    ollama.Message.ToolCall: {"id"},
    ollama.Message.ToolCall.Function: {"index"},
}


def _strict(model: type[BaseModel], data: Any, where: str = "") -> None:
    """Every key of ``data`` is a field of ``model`` (recursively), and ``model`` validates it strictly."""
    assert isinstance(data, dict), where
    known = {key for name, f in model.model_fields.items() for key in (name, f.alias) if key}
    unknown = set(data) - known - _DROPPED.get(model, set())
    assert not unknown, f"{where or model.__name__}: fields the client does not know: {unknown}"
    by_key = {f.alias or name: f for name, f in model.model_fields.items()} | model.model_fields
    for name, value in data.items():
        if name not in by_key:
            continue
        annotation = by_key[name].annotation
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)
                  and issubclass(a, BaseModel)]
        if nested and isinstance(value, dict):
            _strict(nested[0], value, f"{where}.{name}")
        if nested and isinstance(value, list):
            for item in value:
                _strict(nested[0], item, f"{where}.{name}[]")
    model.model_validate_json(orjson.dumps(data), strict=True)


def _raw(emu: BackgroundEmulators, method: str, path: str, body: Any = None) -> Any:
    return httpx.request(method, emu.url("ollama") + path, json=body, timeout=5.0).json()


def test_chat(client: ollama.Client, emu: BackgroundEmulators) -> None:
    answer = client.chat(model=CHAT_MODEL, messages=MESSAGES)
    assert answer.message.role == "assistant" and answer.message.content == GREETING + "hi llama"
    assert answer.done and answer.done_reason == "stop" and answer.model == CHAT_MODEL
    assert answer.eval_count == 9 and answer.prompt_eval_count == 12
    assert answer.total_duration and answer.eval_duration and answer.created_at
    _strict(ollama.ChatResponse, _raw(emu, "POST", "/api/chat", {"model": CHAT_MODEL, "messages": MESSAGES,
                                                                   "stream": False}))


def test_chat_without_messages_only_loads_the_model(client: ollama.Client) -> None:
    assert [m.model for m in client.ps().models] == [CHAT_MODEL]
    answer = client.chat(model=IDLE_MODEL, messages=[])
    assert answer.done and answer.done_reason == "load" and answer.message.content == ""
    assert [m.model for m in client.ps().models] == [CHAT_MODEL, IDLE_MODEL]


def test_chat_num_predict_cuts_the_answer(client: ollama.Client) -> None:
    answer = client.chat(model=CHAT_MODEL, messages=MESSAGES, options={"num_predict": 2, "temperature": 0.2})
    assert answer.message.content == "Hello from" and answer.done_reason == "length"


def test_chat_stream(client: ollama.Client, emu: BackgroundEmulators) -> None:
    parts = list(client.chat(model=CHAT_MODEL, messages=MESSAGES, stream=True))
    assert "".join(p.message.content or "" for p in parts) == GREETING + "hi llama"
    assert [p.done for p in parts] == [False] * 9 + [True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 9
    with httpx.stream("POST", emu.url("ollama") + "/api/chat",
                      json={"model": CHAT_MODEL, "messages": MESSAGES}) as response:  # streams by default
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == 10
    for line in lines:
        _strict(ollama.ChatResponse, httpx.Response(200, content=line).json())


def test_embed_keeps_input_order(client: ollama.Client, emu: BackgroundEmulators) -> None:
    out = client.embed(model=EMBED_MODEL, input=["first", "second", "first"])
    assert len(out.embeddings) == 3 and out.embeddings[0] == out.embeddings[2] != out.embeddings[1]
    assert out.model == EMBED_MODEL and out.prompt_eval_count == 3
    single = client.embed(model=EMBED_MODEL, input="second")
    assert single.embeddings == [out.embeddings[1]]
    assert client.embed(model=EMBED_MODEL, input=[]).embeddings == []  # loads the model only
    _strict(ollama.EmbedResponse, _raw(emu, "POST", "/api/embed", {"model": EMBED_MODEL, "input": ["a"]}))


def test_list_ps_and_show(client: ollama.Client, emu: BackgroundEmulators) -> None:
    assert [m.model for m in client.list().models] == [CHAT_MODEL, EMBED_MODEL, IDLE_MODEL, FEATURE_MODEL]
    assert [m.model for m in client.ps().models] == [CHAT_MODEL]  # loaded at start
    client.embed(model=EMBED_MODEL, input="x")  # loads on demand
    assert [m.model for m in client.ps().models] == [CHAT_MODEL, EMBED_MODEL]
    shown = client.show(EMBED_MODEL)
    assert shown.capabilities == ["embedding"] and shown.details and shown.details.family == "bert"
    assert client.show(CHAT_MODEL).capabilities == ["completion", "tools"]
    _strict(ollama.ListResponse, _raw(emu, "GET", "/api/tags"))
    _strict(ollama.ProcessResponse, _raw(emu, "GET", "/api/ps"))
    _strict(ollama.ShowResponse, _raw(emu, "POST", "/api/show", {"model": CHAT_MODEL}))
    assert _raw(emu, "GET", "/api/version")["version"]


def test_model_not_pulled_is_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3.3:70b", messages=MESSAGES)
    assert err.value.status_code == 404
    assert err.value.error == 'model "llama3.3:70b" not found, try pulling it first'
    with pytest.raises(ollama.ResponseError) as shown:
        client.show("llama3.3:70b")
    assert shown.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as embed:
        client.embed(model="mxbai-embed-large", input="x")
    assert (embed.value.status_code, embed.value.error) == (404, "model 'mxbai-embed-large' not found")


def test_missing_capability_is_a_400(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as chat:
        client.chat(model=EMBED_MODEL, messages=MESSAGES)
    assert (chat.value.status_code, chat.value.error) == (400, f'"{EMBED_MODEL}" does not support chat')
    with pytest.raises(ollama.ResponseError) as embed:
        client.embed(model=CHAT_MODEL, input="x")
    assert embed.value.status_code == 400 and "does not support" in embed.value.error


@pytest.mark.parametrize(("status", "phrase"), [(503, "server busy"), (500, "llama runner"), (429, "too many")])
def test_status_faults_are_response_errors(
    client: ollama.Client, controls: dict[str, EmulatorControl], status: int, phrase: str
) -> None:
    controls["ollama"].add_faults({"mode": "status", "status": status, "headers": {"retry-after": "1"}})
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=CHAT_MODEL, messages=MESSAGES)
    assert err.value.status_code == status and phrase in err.value.error


def test_error_line_mid_stream(client: ollama.Client, controls: dict[str, EmulatorControl]) -> None:
    controls["ollama"].add_faults({"mode": "error_event", "after_chunks": 3})
    received: list[str] = []
    with pytest.raises(ollama.ResponseError) as err:
        for part in client.chat(model=CHAT_MODEL, messages=MESSAGES, stream=True):
            received.append(part.message.content or "")
    assert received == ["Hello ", "from ", "the "]
    assert "error was encountered while running the model" in err.value.error


def test_unknown_path_is_gins_plain_404(emu: BackgroundEmulators) -> None:
    response = httpx.get(emu.url("ollama") + "/api/nothing-here")
    assert response.status_code == 404 and response.text == "404 page not found"


# ---------------------------------------------------------------- beyond plain text (issue #16)

FEATURE_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                  "required": ["city"]}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",
                                                 "parameters": FEATURE_SCHEMA}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
ASK = [{"role": "user", "content": "weather in Paris?"}]


def _raw_stream(emu: BackgroundEmulators, body: dict[str, Any]) -> list[Any]:
    with httpx.stream("POST", emu.url("ollama") + "/api/chat", json={**body, "stream": True}) as response:
        return [orjson.loads(line) for line in response.iter_lines() if line]


def _strict_both(emu: BackgroundEmulators, body: dict[str, Any]) -> list[Any]:
    """The answer and every stream line, each strictly a ``ChatResponse``; the stream lines returned."""
    _strict(ollama.ChatResponse, _raw(emu, "POST", "/api/chat", {**body, "stream": False}))
    lines = _raw_stream(emu, body)
    for item in lines:
        _strict(ollama.ChatResponse, item)
    return lines


def test_format_schema_and_json(client: ollama.Client, emu: BackgroundEmulators) -> None:
    answer = client.chat(model=CHAT_MODEL, messages=ASK, format=FEATURE_SCHEMA)
    assert orjson.loads(answer.message.content or "") == {"city": "text", "days": 1}
    plain = client.chat(model=CHAT_MODEL, messages=ASK, format="json")
    assert orjson.loads(plain.message.content or "") == {"reply": GREETING + "weather in Paris?"}
    _strict_both(emu, {"model": CHAT_MODEL, "messages": ASK, "format": FEATURE_SCHEMA})
    bad = httpx.post(emu.url("ollama") + "/api/chat", json={"model": CHAT_MODEL, "messages": ASK, "format": "xml",
                                                            "stream": False})
    assert bad.status_code == 400 and bad.json()["error"].startswith('invalid format: "\\"xml\\""; expected "json"')


def test_schema_violation_fault(client: ollama.Client, controls: dict[str, EmulatorControl]) -> None:
    controls["ollama"].add_faults({"mode": "schema_violation"})
    answer = client.chat(model=CHAT_MODEL, messages=ASK, format=FEATURE_SCHEMA)
    assert orjson.loads(answer.message.content or "") == {"unexpected": True}


def test_tool_call_and_result(client: ollama.Client, emu: BackgroundEmulators) -> None:
    answer = client.chat(model=CHAT_MODEL, messages=ASK, tools=[WEATHER_TOOL])
    assert answer.done_reason == "stop" and answer.message.content == ""
    [call] = answer.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == {"city": "text", "days": 1}
    lines = _strict_both(emu, {"model": CHAT_MODEL, "messages": ASK, "tools": [WEATHER_TOOL]})
    assert [bool(line["message"].get("tool_calls")) for line in lines] == [True, False]
    raw = _raw(emu, "POST", "/api/chat", {"model": CHAT_MODEL, "messages": ASK, "tools": [WEATHER_TOOL],
                                          "stream": False})
    assert raw["message"]["tool_calls"][0]["id"].startswith("call_")  # api/types.go ToolCall.ID
    follow_up = [*ASK, {"role": "assistant", "content": "", "tool_calls": raw["message"]["tool_calls"]},
                 {"role": "tool", "content": "18 C", "tool_name": "get_weather",
                  "tool_call_id": raw["message"]["tool_calls"][0]["id"]}]
    after = client.chat(model=CHAT_MODEL, messages=follow_up, tools=[WEATHER_TOOL])
    assert after.message.content == "The tool get_weather returned: 18 C" and not after.message.tool_calls


def test_tools_need_the_capability(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=IDLE_MODEL, messages=ASK, tools=[WEATHER_TOOL])
    assert (err.value.status_code, err.value.error) == (400, f'"{IDLE_MODEL}" does not support tools')


def test_images(client: ollama.Client, emu: BackgroundEmulators) -> None:
    messages = [{"role": "user", "content": "what is this?", "images": [PNG]}]
    answer = client.chat(model=FEATURE_MODEL, messages=messages, think=False)
    assert (answer.message.content or "").startswith("I see 1 image (image/png 70 bytes). Hello from")
    _strict_both(emu, {"model": FEATURE_MODEL, "messages": messages})
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=FEATURE_MODEL, messages=[{"role": "user", "content": "x", "images": ["no%base64"]}])
    assert (err.value.status_code, err.value.error) == (400, "illegal base64 data at input byte 2")


@pytest.mark.parametrize("think", [True, "low", "high"])
def test_thinking(client: ollama.Client, emu: BackgroundEmulators, think: bool | str) -> None:
    answer = client.chat(model=FEATURE_MODEL, messages=ASK, think=think)
    assert answer.message.thinking == "Thinking about: weather in Paris?. The answer follows."
    assert answer.message.content == GREETING + "weather in Paris?"
    assert answer.eval_count == 10 + 8  # the answer's words and the thinking's
    lines = _strict_both(emu, {"model": FEATURE_MODEL, "messages": ASK, "think": think})
    assert "".join(line["message"].get("thinking", "") for line in lines) == answer.message.thinking
    assert not (client.chat(model=FEATURE_MODEL, messages=ASK, think=False).message.thinking)


def test_thinking_errors(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as unable:
        client.chat(model=CHAT_MODEL, messages=ASK, think=True)
    assert (unable.value.status_code, unable.value.error) == (400, f'"{CHAT_MODEL}" does not support thinking')
    with pytest.raises(ollama.ResponseError) as level:
        client.chat(model=FEATURE_MODEL, messages=ASK, think="extreme")  # type: ignore[arg-type]
    assert level.value.status_code == 400 and level.value.error.startswith('invalid think value: "extreme"')


def test_sampling_options(client: ollama.Client) -> None:
    options = {"stop": ["END"], "top_p": 0.9, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.2}
    assert client.chat(model=CHAT_MODEL, messages=ASK, options=options).message.content
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=CHAT_MODEL, messages=ASK, options={"stop": "END"})
    assert (err.value.status_code, err.value.error) == (400, 'option "stop" must be of type array')


def test_show_lists_every_feature(client: ollama.Client) -> None:
    assert client.show(FEATURE_MODEL).capabilities == ["completion", "vision", "tools", "thinking"]


@pytest.mark.parametrize(("extra", "error"), [
    ({"tools": {"name": "f"}}, "json: cannot unmarshal tools"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "json: cannot unmarshal tools"),
    ({"think": 2}, "think must be a boolean or string"),
    ({"options": {"seed": "7"}}, 'option "seed" must be of type integer'),
    ({"options": {"top_p": True}}, 'option "top_p" must be of type float32'),
    ({"messages": [{"role": "assistant", "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]},
     "json: cannot unmarshal tool_calls"),
    ({"messages": [{"role": "user", "content": "x", "images": [1]}]}, "json: cannot unmarshal images"),
])
def test_malformed_features_are_400s(emu: BackgroundEmulators, extra: dict[str, Any], error: str) -> None:
    response = httpx.post(emu.url("ollama") + "/api/chat",
                          json={"model": FEATURE_MODEL, "messages": ASK, "stream": False, **extra})
    assert response.status_code == 400 and response.json()["error"].startswith(error)

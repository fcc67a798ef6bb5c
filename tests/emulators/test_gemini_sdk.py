"""The official ``google-genai`` SDK against the Gemini emulator, in its strictest mode.

Strict: the SDK quietly ignores response fields its types do not know (its converters
copy known keys only, then ``_common._remove_extra_fields`` prunes the rest). Here every
field pruned fails the test, and each raw GenerateContentResponse and EmbedContentResponse
is also validated against the SDK's own types, which forbid unknown fields: the emulator
sends only what the SDK describes. (The one prune allowed is the SDK's own
``tuned_model_info``, which it fills with a copy of the whole model and then trims.)
Every warning is an error, and the SDK does not retry: a fault is seen once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import _common, errors, models, types

from emulators.content import count_words, embedding_vector
from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from tests.emulators.conftest import GEMINI_KEY

pytestmark = pytest.mark.filterwarnings("error")

GREETING = "Hello from the Gemini emulator. You said: "
CHAT = "gemini-3.5-flash-lite"  # the shipped default; thinks minimally unless asked
FLASH = "gemini-3.8-flash"  # thinks at MEDIUM unasked
EMBED = "gemini-embedding-001"


def sdk(emu: BackgroundEmulators, api_key: str = GEMINI_KEY) -> genai.Client:
    options = types.HttpOptions(base_url=emu.url("gemini"), api_version="v1beta", timeout=5000,
                                retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=api_key, http_options=options)


def _dropped(before: Any, after: Any, path: str = "") -> list[str]:
    """The keys present in ``before`` and missing from ``after``, as dotted paths."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [p for k, v in before.items()
                for p in ([f"{path}{k}"] if k not in after else _dropped(v, after[k], f"{path}{k}."))]
    if isinstance(before, list) and isinstance(after, list):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=False)) for p in _dropped(b, a, f"{path}{i}.")]
    return []


def _validating(convert: Any, shape: type[types._common.BaseModel]) -> Any:
    """``convert`` after validating its raw input against ``shape`` (unknown fields forbidden)."""

    def strict(from_object: Any, *args: Any, **kwargs: Any) -> Any:
        raw = {k: v for k, v in from_object.items() if k != "sdkHttpResponse"}
        shape.model_validate(raw)
        return convert(from_object, *args, **kwargs)

    return strict


@pytest.fixture
def gem(emu: BackgroundEmulators, monkeypatch: pytest.MonkeyPatch) -> Iterator[genai.Client]:
    prune = _common._remove_extra_fields
    dropped: list[str] = []
    depth = [0]  # the SDK prunes recursively: only the outermost call sees whole paths

    def strict_prune(model: Any, response: dict[str, object]) -> None:
        before = copy.deepcopy(response) if depth[0] == 0 else None
        depth[0] += 1
        try:
            prune(model, response)
        finally:
            depth[0] -= 1
        if before is not None:
            dropped.extend(p for p in _dropped(before, response) if "tuned_model_info" not in p)

    monkeypatch.setattr(_common, "_remove_extra_fields", strict_prune)
    for converter, shape in (("_GenerateContentResponse_from_mldev", types.GenerateContentResponse),
                             ("_EmbedContentResponse_from_mldev", types.EmbedContentResponse)):
        monkeypatch.setattr(models, converter, _validating(getattr(models, converter), shape))
    client = sdk(emu)
    yield client
    client.close()
    assert dropped == [], f"the emulator sent fields the SDK does not know: {dropped}"


@pytest.fixture
def control(controls: dict[str, EmulatorControl]) -> EmulatorControl:
    return controls["gemini"]


def test_generate_content(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction="Be kind.", temperature=0.2)
    response = gem.models.generate_content(model=CHAT, contents="hi gemini", config=config)
    assert response.text == GREETING + "hi gemini"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 9, 13)
    assert response.model_version == CHAT and response.response_id


def test_max_output_tokens_cuts_the_answer(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(max_output_tokens=2)
    response = gem.models.generate_content(model=CHAT, contents="hi gemini", config=config)
    assert response.text == "Hello from"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_generate_content_stream(gem: genai.Client) -> None:
    contents: list[Any] = [
        types.Content(role="user", parts=[types.Part(text="first")]),
        types.Content(role="model", parts=[types.Part(text="ok")]),
        types.Content(role="user", parts=[types.Part(text="hi stream")]),
    ]
    chunks = list(gem.models.generate_content_stream(model=CHAT, contents=contents))
    assert "".join(c.text or "" for c in chunks) == GREETING + "hi stream"
    assert len(chunks) == 10  # one per word, then the finishing chunk
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count == 9


def test_embed_content_keeps_the_order(gem: genai.Client) -> None:
    texts = ["alpha", "beta", "gamma"]
    result = gem.models.embed_content(model=EMBED, contents=texts)
    assert result.embeddings is not None
    assert [e.values for e in result.embeddings] == [embedding_vector(t) for t in texts]


def test_models_list_pages_and_get(gem: genai.Client) -> None:
    names = [m.name for m in gem.models.list(config={"page_size": 1})]
    assert names == [f"models/{CHAT}", f"models/{FLASH}", "models/gemini-embedding-001"]  # shut-down ids unlisted
    model = gem.models.get(model=EMBED)
    assert model.display_name == "Gemini Embedding 001" and model.input_token_limit == 2048
    assert model.supported_actions and "embedContent" in model.supported_actions


def test_wrong_key_and_unknown_model(emu: BackgroundEmulators, gem: genai.Client) -> None:
    wrong_client = sdk(emu, api_key="AIzaWrongKey")
    with pytest.raises(errors.ClientError) as wrong:
        wrong_client.models.generate_content(model=CHAT, contents="x")
    wrong_client.close()
    assert (wrong.value.code, wrong.value.status) == (400, "INVALID_ARGUMENT")
    assert wrong.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    with pytest.raises(errors.ClientError) as missing:
        gem.models.generate_content(model="gemini-9", contents="x")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")


def test_429_carries_retry_info(gem: genai.Client, control: EmulatorControl) -> None:
    control.add_faults({"mode": "status", "status": 429, "delay_s": 1.5},
                       {"mode": "status", "status": 429, "error_code": "no_retry_info"})
    with pytest.raises(errors.ClientError) as limited:
        gem.models.generate_content(model=CHAT, contents="x")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = limited.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"} in details
    with pytest.raises(errors.ClientError) as bare:
        gem.models.generate_content(model=CHAT, contents="x")
    assert not [d for d in bare.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")]


@pytest.mark.parametrize(("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")])
def test_server_errors(gem: genai.Client, control: EmulatorControl, status: int, name: str) -> None:
    control.add_faults({"mode": "status", "status": status})
    with pytest.raises(errors.ServerError) as failed:
        gem.models.generate_content(model=CHAT, contents="x")
    assert (failed.value.code, failed.value.status) == (status, name)


def test_in_stream_error(gem: genai.Client, control: EmulatorControl) -> None:
    control.add_faults({"mode": "error_event", "after_chunks": 2})
    seen: list[str] = []
    with pytest.raises(errors.ServerError) as failed:
        for chunk in gem.models.generate_content_stream(model=CHAT, contents="x"):
            seen.append(chunk.text or "")
    assert (failed.value.code, failed.value.status) == (503, "UNAVAILABLE")
    assert "".join(seen) == "Hello from "


def test_blocked_prompt(gem: genai.Client, control: EmulatorControl) -> None:
    control.add_faults({"mode": "content_blocked", "after_chunks": 0, "error_code": "PROHIBITED_CONTENT"})
    response = gem.models.generate_content(model=CHAT, contents="x")
    assert response.candidates is None and response.text is None
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_answer_stopped_by_safety_in_a_stream(gem: genai.Client, control: EmulatorControl) -> None:
    control.add_faults({"mode": "content_blocked", "after_chunks": 3})
    chunks = list(gem.models.generate_content_stream(model=CHAT, contents="x"))
    assert "".join(c.text or "" for c in chunks) == "Hello from the "
    last = chunks[-1].candidates
    assert last and last[0].finish_reason == types.FinishReason.SAFETY
    assert last[0].safety_ratings and last[0].safety_ratings[0].blocked is True


def test_key_in_query_and_missing_key(emu: BackgroundEmulators, http: httpx.Client) -> None:
    url = f"{emu.url('gemini')}/v1beta/models"
    assert http.get(url, params={"key": GEMINI_KEY}).status_code == 200
    refused = http.get(url)
    assert refused.status_code == 403
    assert refused.json()["error"]["status"] == "PERMISSION_DENIED"


def test_single_embed_and_count_tokens_over_raw_http(emu: BackgroundEmulators, http: httpx.Client) -> None:
    base, headers = f"{emu.url('gemini')}/v1beta/models", {"x-goog-api-key": GEMINI_KEY}
    one = http.post(f"{base}/{EMBED}:embedContent", headers=headers, json={"content": {"parts": [{"text": "hi"}]}})
    assert one.status_code == 200 and one.json() == {"embedding": {"values": embedding_vector("hi")}}
    body = {"contents": [{"role": "user", "parts": [{"text": "three little words"}]}]}
    assert http.post(f"{base}/{CHAT}:countTokens", headers=headers, json=body).json() == {"totalTokens": 3}
    empty = http.post(f"{base}/{EMBED}:embedContent", headers=headers, json={"content": {"parts": []}})
    assert empty.status_code == 400 and empty.json()["error"]["status"] == "INVALID_ARGUMENT"


# ---- beyond plain text (issue #16): the shapes each feature takes, in the SDK's own types

WEATHER = types.FunctionDeclaration(
    name="get_weather", description="The weather in a city.",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                            "required": ["city"]})
CLOCK = types.FunctionDeclaration(name="get_time", parameters_json_schema={"type": "object", "properties": {}})
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def _tools_config(mode: str = "AUTO", allowed: list[str] | None = None) -> types.GenerateContentConfig:
    calling = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed)
    return types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, CLOCK])],
                                       tool_config=types.ToolConfig(function_calling_config=calling),
                                       automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))


def test_function_call_then_its_result(gem: genai.Client) -> None:
    response = gem.models.generate_content(model=CHAT, contents="weather in Paris?",
                                           config=_tools_config("ANY", ["get_time"]))
    calls = response.function_calls
    assert calls and [(c.name, c.args, c.id) for c in calls] == [("get_time", {}, None)]
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    contents: list[Any] = [
        types.Content(role="user", parts=[types.Part(text="weather in Paris?")]),
        response.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(
            name="get_time", response={"output": "12:00 UTC"})]),
    ]
    answer = gem.models.generate_content(model=CHAT, contents=contents, config=_tools_config())
    assert answer.text == "The tool get_time returned: 12:00 UTC"


def test_function_call_streams_in_the_last_chunk(gem: genai.Client) -> None:
    chunks = list(gem.models.generate_content_stream(model=CHAT, contents="weather?", config=_tools_config()))
    calls = [c for chunk in chunks for c in chunk.function_calls or []]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "text", "days": 1})]
    last = chunks[-1].candidates
    assert last and last[0].finish_reason == types.FinishReason.STOP


def test_mode_none_answers_text(gem: genai.Client) -> None:
    response = gem.models.generate_content(model=CHAT, contents="weather?", config=_tools_config("NONE"))
    assert response.function_calls is None and response.text == GREETING + "weather?"


def test_response_json_schema(gem: genai.Client) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array",
              "items": {"type": "string"}}}, "required": ["name", "tags"]}
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)
    response = gem.models.generate_content(model=CHAT, contents="a person", config=config)
    assert response.text == '{"name":"text","tags":["text"]}'
    plain_json = types.GenerateContentConfig(response_mime_type="application/json")
    assert gem.models.generate_content(model=CHAT, contents="hi", config=plain_json).text == \
        '{"reply":"' + GREETING + 'hi"}'


def test_schema_violation_fault(gem: genai.Client, control: EmulatorControl) -> None:
    control.add_faults({"mode": "schema_violation"})
    config = types.GenerateContentConfig(response_mime_type="application/json",
                                         response_json_schema={"type": "object", "properties": {}})
    assert gem.models.generate_content(model=CHAT, contents="x", config=config).text == '{"unexpected":true}'


def test_inline_image(gem: genai.Client) -> None:
    contents = [types.Part.from_bytes(data=PNG, mime_type="image/png"), "what is this?"]
    response = gem.models.generate_content(model=CHAT, contents=contents)
    assert response.text == f"I see 1 image (image/png {len(PNG)} bytes). {GREETING}what is this?"


def test_thinking_with_thoughts(gem: genai.Client) -> None:
    thinking = types.ThinkingConfig(thinking_budget=1024, include_thoughts=True)
    response = gem.models.generate_content(model=CHAT, contents="why is the sky blue",
                                           config=types.GenerateContentConfig(thinking_config=thinking))
    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    first = response.candidates[0].content.parts[0]
    assert first.thought is True and first.text == "Thinking about: why is the sky blue. The answer follows."
    assert response.text == GREETING + "why is the sky blue"  # the SDK's text leaves thoughts out
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count == 10
    assert usage.total_token_count == 5 + 12 + 10
    streamed = list(gem.models.generate_content_stream(
        model=CHAT, contents="why", config=types.GenerateContentConfig(thinking_config=thinking)))
    assert streamed[0].candidates and streamed[0].candidates[0].content
    assert streamed[0].candidates[0].content.parts and streamed[0].candidates[0].content.parts[0].thought is True


@pytest.mark.parametrize(("model", "level", "thoughts"), [
    (CHAT, types.ThinkingLevel.LOW, "Thinking (low effort) about: why is the sky blue. The answer follows."),
    (FLASH, types.ThinkingLevel.HIGH, "Thinking (high effort) about: why is the sky blue. The answer follows."),
    (CHAT, types.ThinkingLevel.MINIMAL, None),  # minimal: no thoughts
])
def test_thinking_by_level(gem: genai.Client, model: str, level: types.ThinkingLevel, thoughts: str | None) -> None:
    thinking = types.ThinkingConfig(thinking_level=level, include_thoughts=True)
    response = gem.models.generate_content(model=model, contents="why is the sky blue",
                                           config=types.GenerateContentConfig(thinking_config=thinking))
    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    first = response.candidates[0].content.parts[0]
    assert (first.text if first.thought else None) == thoughts
    assert response.text == GREETING + "why is the sky blue"
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count == (count_words(thoughts) if thoughts else None)


def test_a_model_thinks_at_its_default_level_unasked(gem: genai.Client) -> None:
    plain = gem.models.generate_content(model=FLASH, contents="why")
    assert plain.usage_metadata is not None
    thoughts = "Thinking (medium effort) about: why. The answer follows."  # 3.8 Flash's default level
    assert plain.usage_metadata.thoughts_token_count == count_words(thoughts)
    assert plain.candidates and plain.candidates[0].content and plain.candidates[0].content.parts
    assert not any(p.thought for p in plain.candidates[0].content.parts)  # thoughts only when asked for
    lite = gem.models.generate_content(model=CHAT, contents="why")
    assert lite.usage_metadata is not None and lite.usage_metadata.thoughts_token_count is None


@pytest.mark.parametrize(("retired", "serving"), [("gemini-2.5-flash", CHAT), ("gemini-2.5-pro", FLASH)])
def test_a_shut_down_model_is_answered_by_the_one_google_routes_it_to(gem: genai.Client, retired: str,
                                                                      serving: str) -> None:
    response = gem.models.generate_content(model=retired, contents="hi")
    assert response.text == GREETING + "hi" and response.model_version == serving
    penalty = types.GenerateContentConfig(presence_penalty=0.1)
    if serving == CHAT:  # the new model's rules apply: 3.5 Flash-Lite refuses a penalty
        with pytest.raises(errors.ClientError, match="presence_penalty"):
            gem.models.generate_content(model=retired, contents="hi", config=penalty)
    else:
        assert gem.models.generate_content(model=retired, contents="hi", config=penalty).text == GREETING + "hi"


def test_thinking_signature_on_a_call(gem: genai.Client) -> None:
    config = _tools_config()
    config.thinking_config = types.ThinkingConfig(thinking_budget=512)
    response = gem.models.generate_content(model=CHAT, contents="weather?", config=config)
    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    part = response.candidates[0].content.parts[0]
    assert part.function_call is not None and part.thought_signature


def test_sampling_parameters_are_accepted_and_stop_ends_the_answer(gem: genai.Client) -> None:
    config = types.GenerateContentConfig(stop_sequences=["x"], top_p=0.5, seed=7, presence_penalty=0.1,
                                         frequency_penalty=0.2)
    assert gem.models.generate_content(model=FLASH, contents="hi", config=config).text == GREETING + "hi"
    config.stop_sequences = ["said", "emulator"]
    response = gem.models.generate_content(model=FLASH, contents="hi", config=config)
    assert response.text == "Hello from the Gemini "
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize(("model", "config", "words"), [
    (CHAT, types.GenerateContentConfig(stop_sequences=list("abcdef")), "stop sequences"),
    ("gemini-2.5-pro", types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0)),
     "only works in thinking mode"),
    (CHAT, types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=99999)), "between 0"),
    (CHAT, types.GenerateContentConfig(response_json_schema={"type": "object"}), "application/json"),
    (FLASH, types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
        thinking_level=types.ThinkingLevel.MINIMAL)),
     "MINIMAL is not supported by gemini-3.8-flash; supported levels: LOW, MEDIUM, HIGH"),
    (CHAT, types.GenerateContentConfig(thinking_config=types.ThinkingConfig(
        thinking_level=types.ThinkingLevel.LOW, thinking_budget=1024)), "cannot both be set"),
    (CHAT, types.GenerateContentConfig(presence_penalty=0.1), "does not support setting presence_penalty"),
    (CHAT, types.GenerateContentConfig(frequency_penalty=0.1), "does not support setting frequency_penalty"),
])
def test_refused_combinations(gem: genai.Client, model: str, config: types.GenerateContentConfig, words: str) -> None:
    with pytest.raises(errors.ClientError) as refused:
        gem.models.generate_content(model=model, contents="x", config=config)
    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert words in (refused.value.message or "")


def test_function_response_without_a_call_is_refused(gem: genai.Client) -> None:
    contents = [types.Content(role="user", parts=[types.Part.from_function_response(name="f", response={})])]
    with pytest.raises(errors.ClientError) as refused:
        gem.models.generate_content(model=CHAT, contents=contents)
    assert "immediately after a function call turn" in (refused.value.message or "")


def test_malformed_parts_are_refused_over_raw_http(emu: BackgroundEmulators, http: httpx.Client) -> None:
    url, headers = f"{emu.url('gemini')}/v1beta/models/{CHAT}:generateContent", {"x-goog-api-key": GEMINI_KEY}
    bad = [
        ({"text": "a", "inlineData": {"mimeType": "image/png", "data": "AAAA"}}, "oneof"),
        ({"inlineData": {"mimeType": "image/png", "data": "not base64!"}}, "Base64 decoding failed"),
        ({"inlineData": {"mimeType": "image/bmp", "data": "AAAA"}}, "Unsupported MIME type"),
        ({"txt": "a"}, "Unknown name"),
    ]
    for part, words in bad:
        answer = http.post(url, headers=headers, json={"contents": [{"role": "user", "parts": [part]}]})
        assert answer.status_code == 400 and words in answer.json()["error"]["message"], part
    tools = {"contents": [{"parts": [{"text": "x"}]}], "tools": [{"functionDeclarations": [{"name": "9bad"}]}]}
    assert "Invalid function name" in http.post(url, headers=headers, json=tools).json()["error"]["message"]

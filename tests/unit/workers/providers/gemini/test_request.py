"""The GenerateContentRequest a ChatRequest becomes: plain text as before, and each feature
beyond text (issue #16) in Gemini's wire shape."""

from __future__ import annotations

from typing import Any

import pytest

from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolCall, ToolChoice, ToolSpec
from shared.models import ChatRequest, Message
from workers.providers.gemini.request import SKIP_SIGNATURE, generate_payload

MODEL = "gemini-2.5-flash"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _payload(**extra: Any) -> dict[str, Any]:
    return generate_payload(ChatRequest(MODEL, [Message("system", "Be brief."), Message("user", "hi")], **extra))


def test_plain_text_is_unchanged() -> None:
    assert _payload(max_tokens=5, temperature=0.5) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 5, "temperature": 0.5},
    }


def test_sampling_parameters() -> None:
    sampling = Sampling(stop=["END"], top_p=0.9, seed=7, presence_penalty=0.1, frequency_penalty=-0.2)
    assert _payload(sampling=sampling)["generationConfig"] == {
        "stopSequences": ["END"], "topP": 0.9, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": -0.2}


@pytest.mark.parametrize(("fmt", "config"), [
    (ResponseFormat("json_schema", SCHEMA), {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}),
    (ResponseFormat("json_object"), {"responseMimeType": "application/json"}),
])
def test_structured_output(fmt: ResponseFormat, config: dict[str, Any]) -> None:
    assert _payload(response_format=fmt)["generationConfig"] == config


@pytest.mark.parametrize(("choice", "config"), [
    (ToolChoice("auto"), {"mode": "AUTO"}),
    (ToolChoice("none"), {"mode": "NONE"}),
    (ToolChoice("required"), {"mode": "ANY"}),
    (ToolChoice("tool", "get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tools_and_choice(choice: ToolChoice, config: dict[str, Any]) -> None:
    tools = [ToolSpec("get_weather", "The weather.", SCHEMA), ToolSpec("now", None, {"type": "object"})]
    payload = _payload(tools=tools, tool_choice=choice)
    assert payload["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "parametersJsonSchema": SCHEMA, "description": "The weather."},
        {"name": "now", "parametersJsonSchema": {"type": "object"}},
    ]}]
    assert payload["toolConfig"] == {"functionCallingConfig": config}


def test_calls_and_results_round_trip() -> None:
    calls = [ToolCall("call_1", "get_weather", {"city": "Paris"}), ToolCall("call_2", "now", {})]
    messages = [
        Message("user", "weather and time?"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", "sunny", tool_call_id="call_1", name="get_weather"),
        Message("tool", '{"t": "12:00"}', tool_call_id="call_2", name="now"),
        Message("user", "thanks"),
    ]
    contents = generate_payload(ChatRequest(MODEL, messages))["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": SKIP_SIGNATURE},
        {"functionCall": {"id": "call_2", "name": "now", "args": {}}},
    ]}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"output": "sunny"}}},
        {"functionResponse": {"id": "call_2", "name": "now", "response": {"output": '{"t": "12:00"}'}}},
    ]}
    assert contents[3] == {"role": "user", "parts": [{"text": "thanks"}]}


def test_images_are_inline_data() -> None:
    message = Message("user", [TextPart("what is it?"), ImagePart("iVBORw0KGgo=", "image/png")])
    contents = generate_payload(ChatRequest(MODEL, [message]))["contents"]
    assert contents == [{"role": "user", "parts": [
        {"text": "what is it?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}]


def test_reasoning_is_thinking_config() -> None:
    config = _payload(reasoning=Reasoning("low", 1024, include_thoughts=True))["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}


@pytest.mark.parametrize(("model", "effort", "level"), [
    ("gemini-3.5-flash-lite", "low", "LOW"),
    ("gemini-3.8-flash", "high", "HIGH"),
    ("gemini-3-pro-preview", "medium", "HIGH"),  # low and high only
])
def test_a_gemini_3_model_gets_a_thinking_level_and_never_a_budget(model: str, effort: str, level: str) -> None:
    request = ChatRequest(model, [Message("user", "hi")], reasoning=Reasoning(effort, 5000))  # type: ignore[arg-type]
    config = generate_payload(request)["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingLevel": level, "includeThoughts": False}}

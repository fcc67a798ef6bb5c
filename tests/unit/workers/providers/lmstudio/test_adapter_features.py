"""LM Studio adapter, chat beyond text (issue #16): what discovery says a model can do
(type ``vlm``: vision; ``capabilities`` with ``tool_use``: tools; every chat model: JSON
schema), and the OpenAI shapes working against the LM Studio emulator."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from emulators.control import EmulatorControl
from emulators.features import after_tool_result, image_note, sample_instance
from emulators.server import BackgroundEmulators, EmulatorConfig
from shared import errors
from shared.chat_parts import ImagePart, Reasoning, ResponseFormat, Sampling, TextPart, ToolSpec
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, Message
from tests.unit.workers.providers.helpers import Recorder, collect, deltas, json_response, request, run_with, sse
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.lmstudio.adapter import LMStudioAdapter, server_features
from workers.providers.lmstudio.kind import KIND

T = TypeVar("T")
GREETING = "Hello from the LM Studio emulator. You said: "
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x02" * 30).decode()
TOOL = ToolSpec("lookup", "Look a word up", {"type": "object", "properties": {"word": {"type": "string"}}})
MODELS = [
    {"id": "qwen2.5-7b-instruct", "capabilities": ["tool_use"]},
    {"id": "qwen2-vl-2b-instruct", "type": "vlm"},
    {"id": "nomic-embed-text-v1.5", "type": "embeddings"},
]


@pytest.fixture(scope="module")
def emulators() -> Iterator[BackgroundEmulators]:
    with BackgroundEmulators(EmulatorConfig(ports={"lmstudio": 0})) as running:
        yield running


@pytest.fixture
def control(emulators: BackgroundEmulators) -> Iterator[EmulatorControl]:
    with EmulatorControl(emulators.url("lmstudio")) as ctl:
        ctl.reset()
        ctl.set_models(MODELS)
        yield ctl


def run(emulators: BackgroundEmulators, op: Callable[[LMStudioAdapter], Awaitable[T]]) -> T:
    config = ProviderConfig.model_validate({"kind": "lmstudio", "base_url": emulators.url("lmstudio")})

    async def main() -> T:
        client = AiohttpClient(Timeouts(connect_s=2, read_s=5, pool_s=5), max_connections=4)
        try:
            return await op(LMStudioAdapter("lms", config, None, client))
        finally:
            await client.aclose()

    return asyncio.run(main())


def chat(emulators: BackgroundEmulators, req: ChatRequest) -> ChatResult:
    if not req.stream:
        return run(emulators, lambda a: a.chat(req))

    async def go(adapter: LMStudioAdapter) -> Any:
        return [item async for item in adapter.stream_chat(req)][-1]

    return run(emulators, go)  # type: ignore[no-any-return]


def test_the_kind_declares_what_the_adapter_maps() -> None:
    assert KIND.features == {"vision", "json_schema", "tools"}
    assert KIND.sampling == {"stop", "top_p", "seed", "presence_penalty", "frequency_penalty"}


@pytest.mark.parametrize(("kind", "capabilities", "expected"), [
    ("llm", ["tool_use"], ["json_schema", "tools"]),
    ("llm", [], ["json_schema"]),
    ("vlm", None, ["json_schema", "vision"]),
    ("vlm", ["tool_use"], ["json_schema", "vision", "tools"]),
    ("llm", None, None),  # a server before capabilities were listed says nothing
    ("embeddings", [], None),
])
def test_server_features(kind: str, capabilities: Any, expected: list[str] | None) -> None:
    assert server_features(kind, capabilities) == expected


def test_discovery_fills_features_from_the_server(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    models = {m.id: m for m in run(emulators, lambda a: a.list_models())}
    assert models["qwen2.5-7b-instruct"].features == ["json_schema", "tools"]
    assert models["qwen2-vl-2b-instruct"].features == ["json_schema", "vision"]
    assert models["nomic-embed-text-v1.5"].features is None


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_call_and_structured_output(emulators: BackgroundEmulators, control: EmulatorControl,
                                         streamed: bool) -> None:
    first = chat(emulators, ChatRequest("qwen2.5-7b-instruct", [Message("user", "define cat")], tools=[TOOL],
                                        stream=streamed))
    assert first.finish_reason == "tool_calls" and first.tool_calls is not None
    call = first.tool_calls[0]
    assert (call.name, call.arguments) == ("lookup", {"word": "text"})
    follow = [Message("user", "define cat"), Message("assistant", "", tool_calls=first.tool_calls),
              Message("tool", "a small feline", tool_call_id=call.id, name="lookup")]
    final = chat(emulators, ChatRequest("qwen2.5-7b-instruct", follow, tools=[TOOL], stream=streamed))
    assert final.text == after_tool_result("lookup", "a small feline")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    shaped = chat(emulators, ChatRequest("qwen2.5-7b-instruct", [Message("user", "count")], stream=streamed,
                                         response_format=ResponseFormat("json_schema", schema, "count")))
    assert json.loads(shaped.text) == sample_instance(schema)


def test_images_and_sampling(emulators: BackgroundEmulators, control: EmulatorControl) -> None:
    image = Message("user", [TextPart("what"), ImagePart(PNG, "image/png")])
    result = chat(emulators, ChatRequest("qwen2-vl-2b-instruct", [image], sampling=Sampling(top_p=0.5, seed=2)))
    assert result.text == image_note([("image/png", len(base64.b64decode(PNG)))]) + GREETING + "what"
    with pytest.raises(errors.InvalidRequest, match="does not support images"):
        chat(emulators, ChatRequest("qwen2.5-7b-instruct", [image]))


def test_thinking_text_only_when_asked_and_never_as_stream_text() -> None:
    message = {"role": "assistant", "content": "42", "reasoning_content": "Let me think."}
    body = {"choices": [{"message": message, "finish_reason": "stop"}]}
    asked = request(reasoning=Reasoning("low", 1024, include_thoughts=True))
    result = run_with(LMStudioAdapter, Recorder(json_response(200, body)), lambda a: a.chat(asked), secret=None)
    assert (result.text, result.reasoning) == ("42", "Let me think.")
    quiet = run_with(LMStudioAdapter, Recorder(json_response(200, body)),
                     lambda a: a.chat(request(reasoning=Reasoning("low", 1024))), secret=None)
    assert quiet.reasoning is None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = sse(chunk({"role": "assistant", "reasoning": "Let me "}), chunk({"reasoning": "think."}),
                 chunk({"content": "42"}), chunk({}, "stop"), "[DONE]")
    rec = Recorder(httpx.Response(200, content=events, headers={"content-type": "text/event-stream"}))
    items, error = run_with(LMStudioAdapter, rec, lambda a: collect(a.stream_chat(asked)), secret=None)
    assert error is None and deltas(items) == ["42"]
    assert (items[-1].text, items[-1].reasoning) == ("42", "Let me think.")

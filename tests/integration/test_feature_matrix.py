"""Every chat feature beyond text x every provider kind x chat and chatStream (#16).

One stack runs a provider of every kind (``Sandbox(run_providers="all")``), and the official
MCP client asks ``listModels`` which of each provider's models has each feature. For a
feature the kind declares (``KindSpec.features``) there must be such a model, and the call
must come back with the same meaning on every kind, as ``emulators.features`` decides it:
the schema's sample instance as ``json``, a call of the offered tool with its sample
arguments (and, after the result, an answer quoting it), the image acknowledged whole, and
reasoning reported. For a feature the kind does not declare, the call is ``unsupported``
(the gateway's own tests show that no request is made). The kinds' files test wire details.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.control import EmulatorControl
from emulators.features import image_note, sample_instance
from emulators.lmstudio_api import DEFAULT_MODELS as LMSTUDIO_MODELS
from harness.sandbox import Sandbox
from shared.chat_parts import FEATURES
from shared.tool_names import CHAT, CHAT_STREAM, GET_HEALTH, LIST_MODELS
from tests.integration.conftest import run
from tests.polling import wait_until
from workers.providers.registry import KINDS

pytestmark = pytest.mark.integration

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
          "required": ["city", "days"], "additionalProperties": False}
WEATHER = {"name": "get_weather", "description": "The weather in a city.", "parameters": SCHEMA}
PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
ASK = [{"role": "user", "content": "weather in Paris?"}]
TOOLS = (CHAT, CHAT_STREAM)


# LM Studio's emulator lists no vision model by default; a loaded vlm joins for this module.
VLM = {"id": "qwen2-vl-2b-instruct", "type": "vlm", "arch": "qwen2_vl", "capabilities": ["tool_use"]}


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(run_providers="all") as sandbox:
        sandbox.wait_workers_up()
        provider = _provider_of(sandbox, "lmstudio")
        with EmulatorControl(sandbox.emulators.url("lmstudio")) as control:
            control.set_models([m.model_dump() for m in LMSTUDIO_MODELS] + [VLM])
        call(sandbox, GET_HEALTH, {"refresh_models": True})
        wait_until(lambda: VLM["id"] in _worker_models(sandbox, provider), 10.0, "the vlm model discovered")
        yield sandbox


def _worker_models(box: Sandbox, provider: str) -> list[str]:
    _, health = call(box, GET_HEALTH, {})
    worker = next(w for w in health["workers"] if w["provider"] == provider)
    return [m["id"] for m in worker["models"]]


@pytest.fixture(scope="module")
def catalog(box: Sandbox) -> dict[tuple[str, str], list[str]]:
    """(provider, feature) -> the chat models listModels says have it; (provider, "") -> all of them."""
    async def go() -> dict[str, Any]:
        async with box.client() as client:
            result = await client.call_tool(LIST_MODELS, {"capability": CHAT})
        assert not result.is_error, result.content
        return result.structured_content or {}
    listed = run(go())["models"]
    table: dict[tuple[str, str], list[str]] = {}
    for model in listed:
        table.setdefault((model["provider"], ""), []).append(model["id"])
        for feature in model["features"]:
            table.setdefault((model["provider"], feature), []).append(model["id"])
    return table


def _cases() -> list[tuple[str, str]]:
    return [(kind, feature) for kind in KINDS for feature in FEATURES]


def _provider_of(box: Sandbox, kind: str) -> str:
    return next(name for name, p in box.providers.providers.items() if p.kind == kind)


def call(box: Sandbox, tool: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    async def go() -> tuple[bool, dict[str, Any]]:
        async with box.client() as client:
            result = await client.call_tool(tool, arguments)
        assert result.structured_content is not None, result.content
        return bool(result.is_error), result.structured_content
    return run(go())


def _feature_call(feature: str) -> dict[str, Any]:
    if feature == "json_schema":
        return {"messages": ASK, "response_format": {"type": "json_schema", "schema": SCHEMA}}
    if feature == "tools":
        return {"messages": ASK, "tools": [WEATHER]}
    if feature == "vision":
        image = {"type": "image", "data": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]}
    return {"messages": ASK, "reasoning": {"effort": "low", "include_thoughts": True}, "max_tokens": 4096}


def _check(feature: str, out: dict[str, Any], box: Sandbox, tool: str, target: dict[str, Any]) -> None:
    if feature == "json_schema":
        assert out["json"] == sample_instance(SCHEMA), out
    elif feature == "tools":
        assert out["finish_reason"] == "tool_calls", out
        (made,) = out["tool_calls"]
        assert made["name"] == "get_weather" and made["arguments"] == sample_instance(SCHEMA), made
        follow = [*ASK, {"role": "assistant", "content": "", "tool_calls": [made]},
                  {"role": "tool", "tool_call_id": made["id"], "content": '{"temp_c": 3}'}]
        failed, answer = call(box, tool, {**target, "messages": follow, "tools": [WEATHER]})
        assert not failed and "returned" in answer["text"] and "temp_c" in answer["text"], answer
    elif feature == "vision":
        assert out["text"].startswith(image_note([("image/png", len(PNG))]).strip()), out["text"]
    else:
        assert out["usage"].get("reasoning_tokens") or out.get("reasoning"), out


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(("kind", "feature"), _cases())
def test_every_feature_has_one_meaning_on_every_kind(box: Sandbox, catalog: dict[tuple[str, str], list[str]],
                                                     kind: str, feature: str, tool: str) -> None:
    provider = _provider_of(box, kind)
    declared = feature in KINDS[kind].features
    models = catalog.get((provider, feature), [])
    if not declared:
        assert not models, f"{kind} does not declare {feature} but listModels says {models} have it"
        chat_models = catalog.get((provider, ""), [])
        assert chat_models, f"{provider} lists no chat model"
        failed, out = call(box, tool, {"provider": provider, "model": chat_models[0], **_feature_call(feature)})
        assert failed and out["error"]["type"] == "unsupported", out
        return
    assert models, f"{kind} declares {feature} but no {provider} model has it (listModels)"
    target = {"provider": provider, "model": models[0]}
    failed, out = call(box, tool, {**target, **_feature_call(feature)})
    assert not failed, out
    _check(feature, out, box, tool, target)

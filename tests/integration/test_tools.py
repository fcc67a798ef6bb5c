"""All four tools against all three emulated providers, in both MCP protocol eras."""

from __future__ import annotations

import pytest

from harness.sandbox import Sandbox
from shared.tool_names import TOOL_NAMES
from tests.integration.conftest import run

pytestmark = pytest.mark.integration
ERAS = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("mode", ERAS)
def test_tools_list_has_four_described_tools(box: Sandbox, mode: str) -> None:
    async def scenario() -> None:
        async with box.client(mode) as client:
            tools = (await client.list_tools()).tools
            assert [t.name for t in tools] == list(TOOL_NAMES)
            assert all(t.description and t.output_schema for t in tools)

    run(scenario())


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_chat(box: Sandbox, mode: str, provider: str) -> None:
    async def scenario() -> None:
        async with box.client(mode) as client:
            result = await client.call_tool("chat", {"prompt": "ping pong", "provider": provider})
            assert not result.is_error, result.content
            out = result.structured_content
            assert out is not None
            assert out["provider"] == provider and "ping pong" in out["text"]
            assert out["text"] == result.content[0].text
            assert out["finish_reason"] == "stop"
            assert out["request_id"] and out["latency_ms"] > 0
            assert out["route"]["provider"] == provider
            if provider != "lmstudio":  # LM Studio reports no usage in streams; chat has it
                assert out["usage"]["input_tokens"] and out["usage"]["output_tokens"]

    run(scenario())


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("provider", ["openai", "anthropic", "lmstudio"])
def test_chat_stream_sends_each_delta_as_progress(box: Sandbox, mode: str, provider: str) -> None:
    async def scenario() -> None:
        deltas: list[str] = []
        progress_values: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progress_values.append(progress)
            deltas.append(message or "")

        async with box.client(mode) as client:
            result = await client.call_tool(
                "chatStream",
                {"messages": [{"role": "system", "content": "be brief"},
                              {"role": "user", "content": "tell me about streams"}],
                 "provider": provider},
                progress_callback=on_progress,
            )
        assert not result.is_error, result.content
        out = result.structured_content
        assert out is not None
        assert len(deltas) >= 3 and out["chunks"] == len(deltas) == out["notifications"]
        assert "".join(deltas) == out["text"]
        assert progress_values == sorted(progress_values) and len(set(progress_values)) == len(progress_values)

    run(scenario())


@pytest.mark.parametrize("mode", ERAS)
def test_chat_stream_without_progress_token_counts_deltas_but_sends_no_notification(box: Sandbox, mode: str) -> None:
    async def scenario() -> None:
        async with box.client(mode) as client:
            # No progress_callback: the SDK puts no progressToken on the request.
            result = await client.call_tool("chatStream", {"prompt": "tell me about streams"})
        assert not result.is_error, result.content
        out = result.structured_content
        assert out is not None
        assert out["chunks"] >= 3 and out["notifications"] == 0

    run(scenario())


@pytest.mark.parametrize("mode", ERAS)
def test_embed_one_and_many(box: Sandbox, mode: str) -> None:
    async def scenario() -> None:
        async with box.client(mode) as client:
            one = await client.call_tool("embed", {"input": "hello"})
            many = await client.call_tool("embed", {"input": ["a", "b", "c"], "provider": "lmstudio"})
            refused = await client.call_tool("embed", {"input": "x", "provider": "anthropic"})
        assert not one.is_error and not many.is_error, (one.content, many.content)
        assert one.structured_content and many.structured_content
        assert len(one.structured_content["vectors"]) == 1 and one.structured_content["provider"] == "openai"
        assert len(many.structured_content["vectors"]) == 3
        assert many.structured_content["dimensions"] == len(many.structured_content["vectors"][0]) > 0
        assert refused.is_error and refused.structured_content
        assert refused.structured_content["error"]["type"] == "unsupported"
        assert refused.content[0].text == "unsupported: embed is not supported by anthropic"

    run(scenario())


@pytest.mark.parametrize("mode", ERAS)
def test_get_health_reports_every_worker(box: Sandbox, mode: str) -> None:
    async def scenario() -> None:
        async with box.client(mode) as client:
            result = await client.call_tool("getHealth", {})
        assert not result.is_error
        health = result.structured_content
        assert health is not None and health["status"] == "ok"
        workers = {w["provider"]: w for w in health["workers"]}
        assert set(workers) == {"openai", "anthropic", "lmstudio"}
        for worker in workers.values():
            assert worker["up"] and worker["status"] == "ready"
            assert 0 <= worker["heartbeat_age_s"] < 2
        assert "embed" not in workers["anthropic"]["capabilities"]
        lm_models = {m["id"]: m for m in workers["lmstudio"]["models"]}
        assert lm_models["nomic-embed-text-v1.5"]["capabilities"] == ["embed"]
        assert lm_models["llama-3.2-3b-instruct"]["loaded"] is False
        text = str(health)
        assert box.keys["openai"] not in text and box.token not in text

    run(scenario())

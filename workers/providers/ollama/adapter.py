"""The Ollama adapter: its native API at the server's root (``/api/chat``, ``/api/embed``).

* Chat is ``POST /api/chat`` with ``stream`` false, or true for an NDJSON stream
  (``application/x-ndjson``: one JSON object per line, text in ``message.content``; the last
  line has ``done: true`` with ``done_reason`` and the token counts ``prompt_eval_count`` and
  ``eval_count``). ``max_tokens`` and ``temperature`` go in ``options`` (``num_predict``,
  ``temperature``); a system prompt stays a ``system`` message. Sampling parameters, structured
  output, images, tools and reasoning: ``chat_wire``, which also maps tool calls and thinking
  back (a stream gathers them into its final result; only ``content`` goes out as text).
* A failure after the stream started is a line ``{"error": "..."}`` under the 200 already
  sent: before any text it is the mapped error (a runner failure is a retryable
  ``provider_error``), after text ``stream_interrupted`` with the partial answer.
* Embeddings: ``POST /api/embed`` with a list of inputs; vectors come back in input order.
* No key: a key, when configured, is sent as ``Bearer`` for a reverse proxy in front of Ollama.
* Discovery, and where each model's capabilities come from: ``discovery``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

from shared import errors
from shared.models import ChatRequest, ChatResult, EmbedRequest, EmbedResult, ModelInfo, TextDelta, Usage
from workers.config_record import ProviderRecord
from workers.http_client import HttpClient
from workers.providers.http_base import HttpAdapter, StreamState, as_int, decode_json
from workers.providers.ollama.chat_wire import Aggregate, chat_payload, finish_reason, refuse_tool_choice
from workers.providers.ollama.discovery import ModelFacts, discover
from workers.providers.ollama.error_map import map_ollama_error
from workers.providers.ollama.kind import KIND
from workers.retry_hints import HeadersLike
from workers.sse import iter_lines

__all__ = ["OllamaAdapter"]

NDJSON = "application/x-ndjson"
# A stream line is a few hundred bytes; the cap keeps a server that never ends a line from
# growing the worker's memory without bound.
MAX_LINE_BYTES = 1024 * 1024


class OllamaAdapter(HttpAdapter):
    kind = KIND.name
    capabilities = KIND.capabilities

    def __init__(self, name: str, config: ProviderRecord, secret: str | None, client: HttpClient) -> None:
        super().__init__(name, config, secret, client)
        # What /api/show said, per model digest: asked once per pulled version, not at every listing.
        self._shown: dict[str, ModelFacts] = {}

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"accept": accept, "content-type": "application/json", **self.spec.auth_headers(self._secret)}

    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        return map_ollama_error(status, headers, body, self.name, self.scrub)

    def chat_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        if request.tool_choice is not None:
            refuse_tool_choice(request, self.name)
        return chat_payload(request, stream=stream)

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = f"{self.config.base_url}/api/chat"
        data = await self.request_json("POST", url, self.chat_payload(request, stream=False), request.traceparent)
        message = data.get("message") if isinstance(data, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(content, str):
            raise self.bad_payload("an unreadable chat answer")
        model = data.get("model") if isinstance(data.get("model"), str) else request.model
        if "tool_calls" not in message and "thinking" not in message:  # plain text: the short way
            return ChatResult(content, model, finish_reason(data.get("done_reason"), False), _usage(data))
        gathered = Aggregate()
        gathered.add(message, self.bad_payload)
        return gathered.result(content, model, data.get("done_reason"), _usage(data), request)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[TextDelta | ChatResult, None]:
        url = f"{self.config.base_url}/api/chat"
        state = StreamState(self.name, request.model)
        gathered = Aggregate()
        lines = self.stream_items(url, self.chat_payload(request, stream=True), state, request.traceparent,
                                  parse=lambda chunks: _objects(chunks, state), media_type=NDJSON,
                                  what="an NDJSON stream")
        async with aclosing(lines) as objects:
            async for line in objects:
                text = self._on_line(line, state, gathered)
                if text:
                    yield TextDelta(text)
                if line.get("done") is True:
                    state.ended = True
                    yield gathered.result(state.text, state.model, line.get("done_reason"), state.usage, request)
                    return
        raise state.interrupted()

    def _on_line(self, line: dict[str, Any], state: StreamState, gathered: Aggregate) -> str:
        """Record one stream line; return its new text ("" when it carries none).

        Only ``content`` is answer text: a thinking model's ``thinking`` and tool calls are
        gathered for the final result, never sent as text."""
        if line.get("error"):
            raise self._stream_error(line, state)
        if isinstance(line.get("model"), str):
            state.model = line["model"]
        if line.get("done") is True:
            state.usage = _usage(line)
        message = line.get("message")
        if not isinstance(message, dict):
            return ""
        if "tool_calls" in message or "thinking" in message:
            gathered.add(message, lambda what: state.broken(f"sent {what}"))
        content = message.get("content")
        if isinstance(content, str) and content:
            state.parts.append(content)
            return content
        return ""

    def _stream_error(self, line: dict[str, Any], state: StreamState) -> errors.LLMCallerError:
        """An error line: the mapped error before any text, an interruption once text went out."""
        error = self.map_error(200, {}, orjson.dumps(line))
        if not state.parts:
            return error
        return errors.StreamInterrupted(f"{error.message}; the stream was cut short", provider=self.name,
                                        partial_text=state.text)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        payload = {"model": request.model, "input": request.inputs}
        data = await self.request_json("POST", f"{self.config.base_url}/api/embed", payload, request.traceparent)
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
            raise self.bad_payload("unreadable embeddings")
        if len(vectors) != len(request.inputs):
            raise self.bad_payload(f"{len(vectors)} embeddings for {len(request.inputs)} inputs")
        model = data.get("model") if isinstance(data.get("model"), str) else request.model
        return EmbedResult(vectors, model, Usage(as_int(data.get("prompt_eval_count")), None))

    async def list_models(self) -> list[ModelInfo]:
        """Pulled models, which are loaded, and what each can do (see ``discovery``)."""
        if not self.config.discover_models:
            return self.configured_models()  # the operator asked us not to ask the server
        return await discover(self, self.config.base_url, self._shown)


async def _objects(chunks: AsyncIterator[bytes], state: StreamState) -> AsyncIterator[dict[str, Any]]:
    """The JSON object of each non-blank NDJSON line; a line that is not one breaks the stream."""
    async for text in iter_lines(chunks, MAX_LINE_BYTES):
        if not text.strip():
            continue
        line = decode_json(text)
        if not isinstance(line, dict):
            raise state.broken("sent a stream line that is not a JSON object")
        yield line


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(as_int(data.get("prompt_eval_count")), as_int(data.get("eval_count")))

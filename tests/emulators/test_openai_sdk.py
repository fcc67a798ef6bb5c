"""The official ``openai`` SDK, with strict response validation, against the OpenAI and LM Studio emulators."""

from __future__ import annotations

import math

import openai
import pytest

from emulators.control import EmulatorControl
from emulators.server import BackgroundEmulators
from tests.emulators.conftest import OPENAI_KEY

GREETING = "Hello from the OpenAI emulator. You said: "


def sdk(base_url: str, api_key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, _strict_response_validation=True,
                         max_retries=0, timeout=5.0)


@pytest.fixture
def oai(emu: BackgroundEmulators) -> openai.OpenAI:
    return sdk(emu.url("openai"))


@pytest.fixture
def lms(emu: BackgroundEmulators) -> openai.OpenAI:
    return sdk(emu.url("lmstudio"), api_key="lm-studio")


def test_chat_completion(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}],
    )
    choice = result.choices[0]
    assert choice.message.content == GREETING + "hi there"
    assert choice.finish_reason == "stop"
    assert result.model == "gpt-4o-mini"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (4, 9)
    assert result.usage.total_tokens == 13


def test_chat_cut_by_max_tokens_reports_length(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(model="gpt-4o", max_tokens=3, messages=[{"role": "user", "content": "x"}])
    assert result.choices[0].message.content == "Hello from the"
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 3


def test_raw_response_headers(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-reset-requests"] == "6m0s"
    for name in ("limit", "remaining"):
        assert int(raw.headers[f"x-ratelimit-{name}-requests"]) > 0
        assert int(raw.headers[f"x-ratelimit-{name}-tokens"]) > 0


def test_stream_with_include_usage(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream me"}], stream=True,
        stream_options={"include_usage": True},
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == GREETING + "stream me"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 9  # word by word
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (2, 9)
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                              stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_stream_helper_accumulates(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(model="gpt-4o-mini", messages=[{"role": "user", "content": "helper"}]) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == GREETING + "helper"


def test_embeddings(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta gamma"],
                                   encoding_format="float")
    assert [d.index for d in result.data] == [0, 1]
    for item in result.data:
        assert len(item.embedding) == 8
        assert math.isclose(math.sqrt(sum(v * v for v in item.embedding)), 1.0, rel_tol=1e-4)
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == 3
    again = oai.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="float")
    assert again.data[0].embedding == result.data[0].embedding  # deterministic


def test_embeddings_default_base64(emu: BackgroundEmulators, oai: openai.OpenAI) -> None:
    """Without encoding_format the SDK asks for base64 and decodes it itself.

    Its strict validation rejects that (``embedding`` is typed as a float list but arrives
    as a string, exactly as from the real API), so this path is checked without it.
    """
    lenient = openai.OpenAI(base_url=emu.url("openai") + "/v1", api_key=OPENAI_KEY, max_retries=0)
    decoded = lenient.embeddings.create(model="text-embedding-3-small", input="alpha").data[0].embedding
    floats = oai.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="float")
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.APIResponseValidationError):
        oai.embeddings.create(model="text-embedding-3-small", input="alpha")


def test_embeddings_dimensions(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=32,
                                   encoding_format="float")
    assert len(result.data[0].embedding) == 32


def test_models_list(oai: openai.OpenAI) -> None:
    ids = {m.id for m in oai.models.list()}
    assert ids == {"gpt-4o-mini", "gpt-4o", "gpt-6-luna", "text-embedding-3-small"}
    assert oai.models.retrieve("gpt-4o").owned_by == "system"


def test_errors_are_typed(emu: BackgroundEmulators, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        sdk(emu.url("openai"), api_key="sk-wrong-key-123456").models.list()
    assert auth.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in str(auth.value.body)  # the normal 401 masks the key
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        oai.embeddings.create(model="gpt-4o-mini", input="x")


def test_rate_limit_and_quota_429s(oai: openai.OpenAI, controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults(
        {"mode": "status", "status": 429, "headers": {"retry-after-ms": "1500"}},
        {"mode": "status", "status": 429, "error_code": "insufficient_quota"},
    )
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    with pytest.raises(openai.RateLimitError) as quota:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert (quota.value.code, quota.value.type) == ("insufficient_quota", "insufficient_quota")


def test_server_errors_and_in_stream_error(oai: openai.OpenAI, controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "status", "status": 503},
                                  {"mode": "error_event", "after_chunks": 2})
    with pytest.raises(openai.InternalServerError) as failed:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 503 and failed.value.type == "server_error"
    stream = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}],
                                         stream=True)
    with pytest.raises(openai.APIError) as in_stream:
        list(stream)
    assert in_stream.value.type == "server_error"


def test_drop_is_a_connection_error(oai: openai.OpenAI, controls: dict[str, EmulatorControl]) -> None:
    controls["openai"].add_faults({"mode": "drop"})
    with pytest.raises(openai.APIConnectionError):
        oai.models.list()
    assert oai.models.list().data  # the emulator itself is fine afterwards


# ---- LM Studio through the same SDK ------------------------------------------------------


def test_lmstudio_chat_and_stream_ignore_include_usage(lms: openai.OpenAI) -> None:
    result = lms.chat.completions.create(model="qwen2.5-7b-instruct", messages=[{"role": "user", "content": "yo"}])
    assert result.choices[0].message.content == "Hello from the LM Studio emulator. You said: yo"
    chunks = list(lms.chat.completions.create(
        model="qwen2.5-7b-instruct", messages=[{"role": "user", "content": "yo"}], stream=True,
        stream_options={"include_usage": True},
    ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == result.choices[0].message.content
    assert all(c.choices and c.usage is None for c in chunks)  # include_usage ignored


def test_lmstudio_embeddings_and_models(lms: openai.OpenAI) -> None:
    result = lms.embeddings.create(model="nomic-embed-text-v1.5", input="hello", encoding_format="float")
    assert len(result.data[0].embedding) == 8
    assert {m.id for m in lms.models.list()} == {"qwen2.5-7b-instruct", "nomic-embed-text-v1.5"}


def test_lmstudio_not_loaded_model_is_bad_request(lms: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        lms.chat.completions.create(model="llama-3.2-3b-instruct", messages=[{"role": "user", "content": "x"}])
    assert err.value.type == "invalid_request_error"
    assert "not loaded" in err.value.message

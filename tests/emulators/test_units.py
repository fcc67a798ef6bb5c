"""Pure pieces: deterministic content, the fault queue, loopback checks, the ports file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from emulators.content import ECHO_LIMIT_CHARS, embedding_vector, make_reply
from emulators.faults import FaultQueue, FaultSpec, RequestStats
from emulators.server import loopback_host, write_ports_file


def test_reply_deltas_concatenate_to_text() -> None:
    reply = make_reply("OpenAI", "  spaced   out\n text ")
    assert reply.text == "Hello from the OpenAI emulator. You said: spaced out text"
    assert "".join(reply.deltas) == reply.text
    assert reply.output_tokens == len(reply.text.split()) and not reply.truncated


def test_reply_truncation_and_echo_limit() -> None:
    cut = make_reply("Anthropic", "one two three", max_tokens=4)
    assert cut.text == "Hello from the Anthropic" and cut.truncated
    assert not make_reply("Anthropic", "x", max_tokens=100).truncated
    long = make_reply("LM Studio", "w" * 10_000)
    assert len(long.text) < ECHO_LIMIT_CHARS + 60


def test_embedding_is_deterministic_unit_vector() -> None:
    vector = embedding_vector("some text")
    assert vector == embedding_vector("some text") and vector != embedding_vector("other text")
    assert len(vector) == 8 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-4)
    assert len(embedding_vector("x", dims=64)) == 64


def test_fault_queue_fifo_times_and_applicability() -> None:
    queue = FaultQueue()
    queue.add([
        FaultSpec(mode="silent_stream"),
        FaultSpec(mode="status", status=500, path="/v1/embeddings"),
        FaultSpec(mode="status", status=429, times=2),
    ])
    assert queue.take("/v1/models", stream=False) == FaultSpec(mode="status", status=429, times=2)
    assert queue.take("/v1/embeddings", stream=False) == FaultSpec(mode="status", status=500, path="/v1/embeddings")
    assert queue.take("/v1/chat/completions", stream=True) == FaultSpec(mode="silent_stream")
    assert queue.take("/v1/chat/completions", stream=True) == FaultSpec(mode="status", status=429, times=2)
    assert queue.take("/v1/chat/completions", stream=True) is None and len(queue) == 0


def test_stats_mask_credentials() -> None:
    stats = RequestStats()
    stats.record("/v1/x", {"Authorization": "Bearer secret", "X-Api-Key": "secret", "Accept": "*/*"})
    assert stats.snapshot()["last_headers"] == {"authorization": "[set]", "x-api-key": "[set]", "accept": "*/*"}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_loopback_only(host: str) -> None:
    with pytest.raises(ValueError):
        loopback_host(host)


def test_loopback_accepted() -> None:
    assert loopback_host("127.0.0.1") == "127.0.0.1"
    assert loopback_host("localhost") == "127.0.0.1"
    assert loopback_host("::1") == "::1"


def test_ports_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "ports.json"
    target.write_text("stale")
    write_ports_file(target, {"openai": 1234})
    assert json.loads(target.read_text()) == {"openai": 1234}
    assert [p.name for p in tmp_path.iterdir()] == ["ports.json"]  # no temp file left behind

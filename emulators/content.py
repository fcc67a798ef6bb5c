"""Deterministic content: what every emulated model "says", how much it "costs", its embeddings.

The reply is a fixed greeting plus an echo of the last user message, so a test can
predict it exactly; usage counts words, which is close enough to tokens for quotas,
budgets and benchmarks while staying trivial to recompute in a test.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ECHO_LIMIT_CHARS",
    "Reply",
    "count_words",
    "embedding_vector",
    "encode_base64_floats",
    "last_user_text",
    "make_reply",
    "message_text",
]

# The echo is for recognising a reply, not for shipping a prompt back: a benchmark may
# send large prompts and we do not want replies (and their streams) to grow with them.
ECHO_LIMIT_CHARS = 200

_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply, both as whole text and as the stream deltas that concatenate to it."""

    text: str
    deltas: tuple[str, ...]
    truncated: bool  # cut short by max_tokens

    @property
    def output_tokens(self) -> int:
        return len(self.deltas)


def make_reply(provider_label: str, user_text: str, max_tokens: int | None = None) -> Reply:
    echo = " ".join(user_text[:ECHO_LIMIT_CHARS].split())
    text = f"Hello from the {provider_label} emulator. You said: {echo}".rstrip()
    words = _WORD.findall(text)
    truncated = max_tokens is not None and 0 < max_tokens < len(words)
    if truncated:
        words = words[:max_tokens]
        # The last delta must not end in a space, or the stream and non-stream texts differ.
        words[-1] = words[-1].rstrip()
    return Reply(text="".join(words), deltas=tuple(words), truncated=truncated)


def count_words(text: str) -> int:
    return len(text.split())


def message_text(content: Any) -> str:
    """Text of a message ``content`` in either wire shape: a string or a list of typed parts.

    Non-text parts (images, tool results...) contribute nothing; they are not validated here.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: Iterable[Any]) -> str:
    text = ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            text = message_text(message.get("content"))
    return text


def embedding_vector(text: str, dims: int = 8) -> list[float]:
    """A unit vector derived from a hash of ``text``: same text, same vector, across runs."""
    raw = hashlib.shake_256(text.encode("utf-8")).digest(2 * dims)
    # Map each 16-bit integer to [-1, 1); an all-zero vector is astronomically unlikely,
    # but guard anyway rather than divide by zero.
    values = [(int.from_bytes(raw[i : i + 2], "big") / 32768.0) - 1.0 for i in range(0, 2 * dims, 2)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def encode_base64_floats(vector: list[float]) -> str:
    """The ``encoding_format: "base64"`` form: little-endian float32, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")

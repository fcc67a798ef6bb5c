"""Fault specs, the FIFO queue that hands them to requests, and per-emulator request stats.

A test queues specs through ``POST /_emulator/faults``; each API request takes at most
one fault: the first queued spec that applies to it (path matches, and a stream-only
mode only applies to a streaming call). Taking one uses up one of the spec's ``times``.
Specs are validated strictly (unknown fields are a 400) so a typo in a test fails loudly
instead of silently injecting nothing.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "KEY_FORMS",
    "MASKED_HEADERS",
    "STREAM_ONLY_MODES",
    "FaultMode",
    "FaultQueue",
    "FaultSpec",
    "FaultsBody",
    "KeyForm",
    "RequestStats",
]

FaultMode = Literal[
    "status",
    "delay",
    "silent_stream",
    "truncated_stream",
    "malformed",
    "error_event",
    "drop",
    "close_mid_headers",
    "html",
    "echo_key_in_error",
    # A provider's safety filter blocks the prompt (after_chunks 0) or stops the answer after
    # after_chunks words, with error_code as its reason. Only APIs that report blocks in their
    # answers apply it (Gemini); the others answer normally.
    "content_blocked",
    # Under structured output the model answers JSON that matches no schema we send
    # (emulators.features.SCHEMA_VIOLATION); calls without a response format answer normally.
    "schema_violation",
]

# These only make sense once a stream has started, so a non-streaming call skips them
# in the queue (it neither consumes them nor is affected).
STREAM_ONLY_MODES = frozenset({"silent_stream", "truncated_stream", "error_event"})

MASKED_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization"})

# How an ``echo_key_in_error`` fault spells the key it was sent, as providers and the
# proxies in front of them have been seen to: whole, without its prefix, only its tail,
# split by a space, upper-cased, URL-encoded (every byte, or only what needs it),
# base64-encoded (as in ``Basic`` auth), as the header it came in, or masked the way
# OpenAI and Anthropic print it ("sk-proj-****...abcd").
KeyForm = Literal["whole", "no_prefix", "tail", "spaced", "upper", "url_all", "url", "base64", "basic_auth",
                  "bearer", "masked_openai", "masked_anthropic"]
KEY_FORMS: tuple[str, ...] = get_args(KeyForm)


def key_in_form(key: str, form: str) -> str:
    """``key`` spelt as ``form`` (one of ``KEY_FORMS``)."""
    prefix = key.rfind("-", 0, max(len(key) - 8, 0)) + 1  # "sk-proj-" / "sk-ant-api03-": up to the last dash
    spelt = {
        "whole": key,
        "no_prefix": key[prefix:],
        "tail": key[-12:],
        "spaced": f"{key[: len(key) // 2]} {key[len(key) // 2:]}",
        "upper": key.upper(),
        "url_all": "".join(f"%{byte:02X}" for byte in key.encode()),
        "url": urllib.parse.quote(key, safe=""),
        "base64": base64.b64encode(key.encode()).decode(),
        "basic_auth": "Basic " + base64.b64encode(f"user:{key}".encode()).decode(),
        "bearer": f"Bearer {key}",
        "masked_openai": f"{key[:prefix + 3]}{'*' * 20}{key[-4:]}",
        "masked_anthropic": f"{key[:prefix + 5]}...{key[-6:]}",
    }
    return spelt[form]


class FaultSpec(BaseModel):
    """One queued fault. Mode parameters that a mode does not use are ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: FaultMode
    path: str | None = None  # exact request path, e.g. "/v1/chat/completions"; None matches any
    times: int = Field(default=1, ge=1)
    # Strike only on every Nth matching request (the others pass untouched): spreads faults
    # through traffic, e.g. every=10 for "10% of calls", instead of a consecutive burst.
    every: int = Field(default=1, ge=1)
    # status / echo_key_in_error / html (default 200)
    status: int | None = Field(default=None, ge=100, le=599)
    key_form: KeyForm = "whole"  # echo_key_in_error: how the echoed key is spelt
    error_type: str | None = None
    error_code: str | None = None
    message: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # delay / silent_stream
    delay_s: float | None = Field(default=None, ge=0)
    # stream modes: how many text deltas go out before the fault strikes
    after_chunks: int = Field(default=1, ge=0)
    # truncated_stream: cut the TCP connection instead of ending the HTTP response cleanly
    close_connection: bool = False

    @model_validator(mode="after")
    def _status_needed(self) -> FaultSpec:
        if self.mode == "status" and self.status is None:
            raise ValueError("mode 'status' needs a 'status' code")
        return self

    def applies_to(self, path: str, stream: bool) -> bool:
        if self.path is not None and self.path != path:
            return False
        return stream or self.mode not in STREAM_ONLY_MODES


class FaultsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    faults: list[FaultSpec]


class _Queued:
    __slots__ = ("left", "seen", "spec")

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.left = spec.times
        self.seen = 0


class FaultQueue:
    """FIFO of specs. Only touched from the emulator's event loop, so it needs no lock."""

    def __init__(self) -> None:
        self._items: list[_Queued] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, specs: list[FaultSpec]) -> None:
        self._items.extend(_Queued(spec) for spec in specs)

    def clear(self) -> int:
        count = len(self._items)
        self._items.clear()
        return count

    def take(self, path: str, stream: bool) -> FaultSpec | None:
        if not self._items:  # the common case in benchmarks: stay cheap
            return None
        for index, item in enumerate(self._items):
            if item.spec.applies_to(path, stream):
                item.seen += 1
                if item.seen % item.spec.every:
                    return None  # not this one's turn: the request passes untouched
                item.left -= 1
                if item.left == 0:
                    del self._items[index]
                return item.spec
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [{**item.spec.model_dump(exclude_defaults=True), "left": item.left} for item in self._items]


class RequestStats:
    """Counts API requests (control calls are not counted) and the faults they were given,
    and keeps the last request's headers and JSON body (what a test checks the gateway sent)."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.faults = 0
        self.faults_by_path: Counter[str] = Counter()
        self.faults_by_mode: Counter[str] = Counter()
        self.last_headers: dict[str, str] = {}
        self.last_body: Any = None
        self.streams_left = 0
        self.last_left_at: float | None = None

    def record(self, path: str, headers: Mapping[str, str], body: Any = None) -> None:
        self.requests += 1
        self.last_body = body
        self.by_path[path] += 1
        # Keys are never kept, only whether one was sent: stats may end up in test logs.
        self.last_headers = {
            name.lower(): "[set]" if name.lower() in MASKED_HEADERS else value for name, value in headers.items()
        }

    def record_fault(self, path: str, spec: FaultSpec) -> None:
        """A request on ``path`` was handed the fault ``spec`` (taken from the queue)."""
        self.faults += 1
        self.faults_by_path[path] += 1
        self.faults_by_mode[spec.mode] += 1

    def record_left(self) -> None:
        """A paced stream's client went away before the end (the stream stopped there)."""
        self.streams_left += 1
        self.last_left_at = time.time()

    def reset(self) -> None:
        self.requests = 0
        self.by_path.clear()
        self.faults = 0
        self.faults_by_path.clear()
        self.faults_by_mode.clear()
        self.last_headers = {}
        self.last_body = None
        self.streams_left = 0
        self.last_left_at = None

    def snapshot(self) -> dict[str, Any]:
        return {"requests": self.requests, "by_path": dict(self.by_path), "faults": self.faults,
                "faults_by_path": dict(self.faults_by_path), "faults_by_mode": dict(self.faults_by_mode),
                "last_headers": self.last_headers, "last_body": self.last_body,
                "streams_left": self.streams_left, "last_left_at": self.last_left_at}

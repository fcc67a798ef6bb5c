"""The ``/_emulator/`` control API, and a small client for it (tests, demo, benchmark).

Every emulator serves these routes, unauthenticated; they are never counted in stats and
never faulted:

``POST /_emulator/faults``   body ``{"faults": [spec, ...]}``, appended to a FIFO queue;
                             answers ``{"queued": <specs now queued>}``; a bad spec is a 400.
``GET /_emulator/faults``    ``{"faults": [spec + {"left": n}, ...]}`` (what is still queued)
``DELETE /_emulator/faults`` ``{"cleared": n}``
``GET /_emulator/stats``     ``{"requests": n, "by_path": {path: n}, "faults": n,
                             "faults_by_path": {path: n}, "faults_by_mode": {mode: n},
                             "last_headers": {...}, "last_body": ..., "streams_left": n,
                             "last_left_at": t}`` (``faults``: requests that were handed a
                             queued fault; ``streams_left``: paced streams, chunk delay > 0,
                             whose client went away mid-stream, the last at epoch seconds
                             ``t``); credentials in last_headers read ``"[set]"``; last_body is
                             the last API request's JSON body
``DELETE /_emulator/stats``  ``{"reset": true}``
``GET /_emulator/health``    ``{"ok": true, "provider": "openai"}``
``PUT /_emulator/models``    LM Studio only: ``{"data": [entry, ...]}`` replaces the model
                             list; entries need an ``id``, the rest defaults (type llm,
                             state loaded, ...); answers the full new list.

A spec: ``{"mode": ..., "path": "/v1/chat/completions" (optional, exact), "times": 1, ...}``.
Each API request takes the first queued spec that applies to it (path matches; the
stream-only modes only apply to ``stream: true`` calls) and uses up one of its ``times``.
Modes and their parameters:

- ``status``: answer ``status`` with the provider's error body; optional ``error_type``,
  ``error_code``, ``message``, ``headers`` (e.g. ``{"retry-after": "2"}``). OpenAI 429 with
  ``error_code: "insufficient_quota"`` is the billing variant.
- ``delay``: wait ``delay_s`` (default 1) then answer normally.
- ``silent_stream``: send ``after_chunks`` (default 1) deltas, then nothing for ``delay_s``
  (default 3600), then the rest of the stream.
- ``truncated_stream``: ``after_chunks`` deltas, then end the response without the end
  marker; ``close_connection: true`` cuts the TCP connection instead.
- ``malformed``: plain call: 200 with invalid JSON; stream: ``data: {not json`` after
  ``after_chunks`` deltas, then the end.
- ``error_event``: stream: the provider's in-stream error after ``after_chunks`` deltas
  (``error_type`` / ``message`` override it), then the end.
- ``close_mid_headers``: send a status line and part of the headers, then close the
  connection (plain and streaming calls alike).
- ``html``: answer ``status`` (default 200) with an HTML page (``text/html``), as a proxy,
  captive portal or wrong base URL would; plain and streaming calls alike.
- ``drop``: close the connection without any HTTP response.
- ``echo_key_in_error``: ``status`` (default 401) error whose message quotes the API key sent,
  spelt as ``key_form`` says (default ``whole``; see ``emulators.faults.KEY_FORMS``).

Usage::

    control = EmulatorControl("http://127.0.0.1:40123")
    control.add_faults({"mode": "status", "status": 429, "headers": {"retry-after": "2"}})
    ...
    assert control.stats()["by_path"]["/v1/chat/completions"] == 2
"""

from __future__ import annotations

from typing import Any

import httpx2

__all__ = ["EmulatorControl"]


class EmulatorControl:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0) -> None:
        # trust_env=False: a proxy from the environment must never see loopback control calls.
        self._http = httpx2.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, "/_emulator" + path, json=body)
        response.raise_for_status()
        return response.json()

    def add_faults(self, *specs: dict[str, Any]) -> int:
        """Queue fault specs; returns how many specs are now queued."""
        return int(self._call("POST", "/faults", {"faults": list(specs)})["queued"])

    def pending_faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["faults"])

    def clear_faults(self) -> int:
        return int(self._call("DELETE", "/faults")["cleared"])

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stats"))

    def reset_stats(self) -> None:
        self._call("DELETE", "/stats")

    def reset(self) -> None:
        """No queued faults, zero counters: a clean slate between tests."""
        self.clear_faults()
        self.reset_stats()

    def set_models(self, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """LM Studio only: replace the model list; returns it with defaults filled in."""
        return list(self._call("PUT", "/models", {"data": models})["data"])

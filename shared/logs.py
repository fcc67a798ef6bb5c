"""Structured logging: one JSON object per line, every record passing one redaction layer.

Each process logs to stderr; supervisord captures the stream into size-rotated files.
Call sites log an *event name* plus fields::

    log_event(logger, "worker_ready", provider="openai", pid=123)

String fields go through ``shared.redact`` so a key or token that slipped into a field
or message is masked before it is written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from typing import Any

import orjson

from shared.redact import redact

__all__ = ["JsonFormatter", "configure_logging", "log_event"]

# LogRecord's own attributes, plus uvicorn's terminal-colour duplicate of the message.
_STD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process_name = process

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            # The type and a redacted message only: tracebacks stay out of shared logs,
            # because frame locals and messages can carry request content.
            exc = record.exc_info[1]
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = redact(str(exc))[:500]
        return orjson.dumps(out, default=str).decode()


def configure_logging(process: str, level: str = "INFO") -> None:
    # A per-process override wins: LLMC_LOG_LEVEL_GATEWAY, LLMC_LOG_LEVEL_WORKER_OPENAI, ...
    key = "LLMC_LOG_LEVEL_" + re.sub(r"[^A-Z0-9]", "_", process.upper())
    level = os.environ.get(key, level).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party libraries log at INFO with request details we do not want by default.
    for noisy in ("httpx", "httpcore", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra=fields)

"""Structured logging: one JSON object per line, every record passing one redaction layer.

Each process logs to stderr; supervisord captures the stream into size-rotated files.
Records are formatted and written by a thread of the process's own (``LineWriter``), not
on the event loop: see decision D15.
Call sites log an *event name* plus fields::

    log_event(logger, "worker_ready", provider="main", pid=123)

String fields go through ``shared.redact`` so a key or token that slipped into a field
or message is masked before it is written anywhere.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from queue import Empty, SimpleQueue
from typing import Any, TextIO

import orjson

from shared.redact import redact

__all__ = ["GATHER_S", "JsonFormatter", "LineWriter", "configure_logging", "log_event"]

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


# Lines written per write() at most when records queue up faster than they are written.
_BATCH = 256
# How long the writer gathers lines before writing them. Each write wakes supervisord,
# which copies our stderr into the log file; one wake per window instead of one per call
# took ~0.1 ms of CPU off every one-client call on a 2-core machine, and the formatting
# now runs after the response has gone out instead of beside it (decision D18).
GATHER_S = 0.05


class LineWriter(logging.Handler):
    """Formats and writes records on its own thread, so the caller only pays for a queue put.

    A gateway call used to format its log line and write it to the pipe supervisord reads,
    all before its response went out; now that happens beside the event loop, gathered
    for ``gather_s`` so several lines go out in one write. ERROR and above are written at
    once: they are the lines wanted most if the process dies next. The queue is drained
    when logging shuts down (normal exit, sys.exit, an unhandled exception); only a
    SIGKILL can lose the last ``gather_s`` of lines, and supervisord logs the kill itself.
    """

    def __init__(self, stream: TextIO, formatter: logging.Formatter, gather_s: float = GATHER_S) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._stream = stream
        self._gather_s = gather_s
        self._queue: SimpleQueue[logging.LogRecord | None] = SimpleQueue()
        self._urgent = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        self._queue.put(record)
        if record.levelno >= logging.ERROR:
            self._urgent.set()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is not None and first.levelno < logging.ERROR:
                self._urgent.wait(self._gather_s)  # cut short by an ERROR or by close()
            self._urgent.clear()
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except Empty:
                    break
            for start in range(0, len(batch), _BATCH):
                chunk = batch[start:start + _BATCH]
                lines = [line for record in chunk if record is not None and (line := self._format(record))]
                if lines:
                    self._write("\n".join(lines) + "\n")
            if None in batch:
                return

    def _format(self, record: logging.LogRecord) -> str | None:
        try:
            return self.format(record)
        except Exception:
            self.handleError(record)
            return None

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone (closed pipe): there is nowhere left to say so

    def close(self) -> None:
        """Write what is queued, then stop the thread (logging.shutdown calls this at exit)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._urgent.set()
            self._thread.join(timeout=5)
        super().close()


def configure_logging(process: str, level: str = "INFO") -> None:
    # A per-process override wins: LLMC_LOG_LEVEL_GATEWAY, LLMC_LOG_LEVEL_WORKER_OPENAI, ...
    key = "LLMC_LOG_LEVEL_" + re.sub(r"[^A-Z0-9]", "_", process.upper())
    level = os.environ.get(key, level).upper()
    # Our lines never carry the caller's file and line, thread or process (JsonFormatter
    # writes none of them), so logging need not walk the stack or look them up for each
    # record: the logging HOWTO's "Optimization" switches, ~3 us per line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = LineWriter(sys.stderr, JsonFormatter(process))
    root = logging.getLogger()
    for previous in root.handlers:
        previous.close()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party libraries log at INFO with request details we do not want by default.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra=fields)

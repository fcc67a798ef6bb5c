"""shared.logs.LineWriter: every record written, in order, off the caller's thread."""

from __future__ import annotations

import io
import logging
import threading

import orjson

from shared.logs import JsonFormatter, LineWriter, log_event


class _SlowStream(io.StringIO):
    """Records which thread wrote, and can hold writes back to let records pile up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.writers: set[str] = set()
        self.writes = 0

    def write(self, text: str) -> int:
        self.gate.wait(5)
        self.writers.add(threading.current_thread().name)
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.linewriter.{id(handler)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_records_are_written_in_order_by_the_writer_thread_and_close_drains_them() -> None:
    stream = _SlowStream()
    writer = LineWriter(stream, JsonFormatter("test"))
    logger = _logger(writer)
    for n in range(500):
        log_event(logger, "tick", n=n, secret_field="sk-abcdefghijklmnopqrstuvwxyz123456")
    stream.gate.set()
    writer.close()
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["n"] for line in lines] == list(range(500))
    assert "abcdefghijklmnop" not in stream.getvalue()  # the redaction layer still applies
    assert stream.writers == {"log-writer"}
    assert stream.writes < 500  # queued records go out several per write


def test_a_record_that_cannot_be_formatted_does_not_stop_the_writer(capsys: object) -> None:
    stream = _SlowStream()
    stream.gate.set()
    writer = LineWriter(stream, JsonFormatter("test"))
    logger = _logger(writer)
    logger.info("broken %s %s", "only-one-arg")  # getMessage() raises
    log_event(logger, "after")
    writer.close()
    assert [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["after"]


def test_a_closed_stream_is_survived() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream, JsonFormatter("test"))
    stream.close()
    log_event(_logger(writer), "nowhere")
    writer.close()  # returns, no exception

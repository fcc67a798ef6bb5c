"""shared.logs.LineWriter: every record written, in order, off the caller's thread."""

from __future__ import annotations

import io
import logging
import threading
import time

import orjson

from shared.logs import JsonFormatter, LineWriter, log_event
from tests.polling import wait_until


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


def test_lines_are_gathered_into_one_write_per_window() -> None:
    stream = _SlowStream()
    stream.gate.set()
    writer = LineWriter(stream, JsonFormatter("test"), gather_s=0.3)
    logger = _logger(writer)
    for n in range(3):
        log_event(logger, "tick", n=n)
    assert stream.writes == 0  # still inside the window
    wait_until(lambda: stream.writes == 1, 5, "the window's three lines are written at once", interval_s=0.01)
    assert len(stream.getvalue().splitlines()) == 3
    writer.close()


def test_an_error_is_written_at_once_and_takes_waiting_lines_with_it() -> None:
    stream = _SlowStream()
    stream.gate.set()
    writer = LineWriter(stream, JsonFormatter("test"), gather_s=60)
    logger = _logger(writer)
    log_event(logger, "before")
    log_event(logger, "broke", level=logging.ERROR)
    # Well inside the 60 s window: the error cut it short.
    wait_until(lambda: "broke" in stream.getvalue(), 5, "the error line is written", interval_s=0.01)
    assert "before" in stream.getvalue()
    writer.close()


def test_close_does_not_wait_out_the_window() -> None:
    stream = _SlowStream()
    stream.gate.set()
    writer = LineWriter(stream, JsonFormatter("test"), gather_s=60)
    log_event(_logger(writer), "last words")
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5  # the join's own limit; the window is 60 s
    assert "last words" in stream.getvalue()

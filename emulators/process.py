"""One provider emulator in its own process, on a fixed port, that can be stopped and started again.

What "the provider's server is down" looks like to a worker: connections to its port are
refused. ``SingleEmulator`` stops the process (SIGTERM, then SIGKILL) so the port is closed,
and starts a new one on the same port (the emulators bind with ``SO_REUSEADDR``), so tests
and benchmarks can check that the stack notices an outage and a recovery::

    server = SingleEmulator("lmstudio", port, folder)
    ... point the provider's base_url at server.url, then:
    server.start(); server.stop(); server.start()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["SingleEmulator"]

# The folder holding the ``emulators`` package (a checkout or site-packages): the child starts
# there so that ``python -m emulators`` imports this very copy of the code.
_CODE_ROOT = Path(__file__).resolve().parents[1]


class SingleEmulator:
    def __init__(self, provider: str, port: int, folder: Path, *, key: str | None = None) -> None:
        self.provider = provider
        self.port = port
        self.folder = folder
        self.key = key
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        """Serve on ``port``; return once it listens (its ports file appears)."""
        ports_file = self.folder / f"{self.provider}-{self.port}.json"
        ports_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "emulators", "--host", "127.0.0.1",
                   "--port", f"{self.provider}={self.port}", "--ports-file", str(ports_file)]
        if self.key is not None:
            command += ["--key", f"{self.provider}={self.key}"]
        with (self.folder / f"{self.provider}-emulator.log").open("ab") as log:
            self.process = subprocess.Popen(command, cwd=_CODE_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env={**os.environ})
        deadline = time.monotonic() + timeout_s
        while not ports_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.provider} emulator did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving: afterwards connections to the port are refused."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

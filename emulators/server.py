"""Serving the emulators: all of them in one event loop, on loopback only.

:class:`EmulatorRunner` binds the sockets itself (so port 0 resolves before serving and
a bind error surfaces plainly), runs one ``uvicorn.Server`` per provider concurrently,
and owns shutdown: it first tells the emulators to end silent streams and delays, then
asks every server to exit. :class:`BackgroundEmulators` runs the same thing in a thread
for in-process tests; ``python -m emulators`` runs it as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import uvicorn

from emulators.base import Emulator
from emulators.registry import EMULATORS, build_emulator

__all__ = [
    "PROVIDERS",
    "BackgroundEmulators",
    "EmulatorConfig",
    "EmulatorRunner",
    "loopback_host",
    "write_ports_file",
]

PROVIDERS = tuple(EMULATORS)


@dataclass(frozen=True)
class EmulatorConfig:
    """What to serve. ``ports`` maps provider to port (0: any free one); absent ones are not started.

    ``keys`` maps provider to the one API key its emulator accepts; a keyed provider without
    an entry accepts any non-empty key.
    """

    ports: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))
    host: str = "127.0.0.1"
    keys: Mapping[str, str] = field(default_factory=dict)
    chunk_delay_s: float = 0.0


def loopback_host(host: str) -> str:
    """``host`` if it is a loopback address ("localhost" becomes 127.0.0.1); ValueError otherwise."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"refusing to bind non-loopback address {host!r}: emulators are local-only")
    return host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto is IPPROTO_TCP, and without it Nagle + delayed ACKs add ~40 ms to every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner.

    uvicorn's own handler is per server and re-raises the signal on exit, which does not
    work with several servers in one loop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmulatorRunner:
    """Serves the configured emulators in the current event loop."""

    def __init__(self, config: EmulatorConfig, *, configure_logging: bool = True) -> None:
        host = loopback_host(config.host)
        for provider in (*config.ports, *config.keys):
            if provider not in EMULATORS:
                raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(EMULATORS)}")
        self.config = config
        self.host = host
        self.emulators: dict[str, Emulator] = {
            p: build_emulator(p, config.keys.get(p), chunk_delay_s=config.chunk_delay_s) for p in config.ports
        }
        self.ports: dict[str, int] = {}
        self._configure_logging = configure_logging
        self._servers: list[_Server] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> dict[str, int]:
        """Bind, start serving, and return the actual ports once every server is listening."""
        sockets: dict[str, socket.socket] = {}
        try:
            for provider, port in self.config.ports.items():
                sockets[provider] = _bind(self.host, port)
        except OSError:
            for sock in sockets.values():
                sock.close()
            raise
        for provider, sock in sockets.items():
            self.ports[provider] = sock.getsockname()[1]
            server = _Server(self._uvicorn_config(self.emulators[provider]))
            self._servers.append(server)
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name=f"emulator-{provider}"))
        while not all(server.started for server in self._servers):
            failed = [task for task in self._tasks if task.done()]
            if failed:
                await self.stop()
                failed[0].result()  # re-raise the startup error
                raise RuntimeError("an emulator server exited during startup")
            await asyncio.sleep(0.005)
        return dict(self.ports)

    def _uvicorn_config(self, emulator: Emulator) -> uvicorn.Config:
        kwargs: dict[str, Any] = {} if self._configure_logging else {"log_config": None}
        return uvicorn.Config(
            emulator.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            interface="asgi3",
            proxy_headers=False,
            server_header=False,
            # Longer than uvicorn's 5 s, nearer real APIs: a pooled client connection closed
            # by the server just as it is reused shows up as a spurious connection error.
            timeout_keep_alive=65,
            # A backstop only: request_stop() already ends silent streams and delays.
            timeout_graceful_shutdown=2,
            **kwargs,
        )

    def request_stop(self) -> None:
        """Ask everything to wind down. Call from the runner's loop (signal handlers do)."""
        for emulator in self.emulators.values():
            emulator.closing.set()
        for server in self._servers:
            server.should_exit = True

    async def wait(self) -> None:
        """Return when every server has exited."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        self.request_stop()
        await self.wait()


def write_ports_file(path: str | os.PathLike[str], ports: Mapping[str, int]) -> None:
    """Write ``{"openai": N, ...}`` atomically: a reader sees no file or the whole file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(orjson.dumps(dict(ports)))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class BackgroundEmulators:
    """The emulators on free ports in a daemon thread with its own loop, for tests::

        with BackgroundEmulators(EmulatorConfig(keys={"openai": "sk-test"})) as emu:
            client = openai.OpenAI(base_url=emu.url("openai") + "/v1", api_key="sk-test")
    """

    def __init__(self, config: EmulatorConfig | None = None, *, start_timeout_s: float = 10.0) -> None:
        self.config = config or EmulatorConfig()
        self.start_timeout_s = start_timeout_s
        self.ports: dict[str, int] = {}
        self.runner: EmulatorRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="emulators", daemon=True)

    def url(self, provider: str) -> str:
        return f"http://{self.config.host}:{self.ports[provider]}"

    def start(self) -> BackgroundEmulators:
        self._thread.start()
        if not self._ready.wait(self.start_timeout_s):
            raise TimeoutError("emulators did not start in time")
        if self._error is not None:
            raise RuntimeError("emulators failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self.runner is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.runner.request_stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.runner = EmulatorRunner(self.config, configure_logging=False)
        self.ports = await self.runner.start()
        self._ready.set()
        await self.runner.wait()

    def __enter__(self) -> BackgroundEmulators:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

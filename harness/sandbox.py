"""A throwaway stack against the bundled provider emulators.

Used by ``llm-caller demo``, the integration tests and the benchmark, so all three run
the very same processes an operator runs: supervisord, the gateway and one worker per
provider, with only the provider base URLs pointed at local emulators.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import httpx2
import orjson
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cli.config_folder import STARTER_PROVIDERS
from cli.stack import CODE_ROOT, Stack
from shared.config import ClientRegistry, ProvidersFile
from shared.files import write_json_atomic
from shared.settings import Settings, StoreSettings
from shared.tokens import hash_token, new_token
from shared.tool_names import GET_HEALTH
from workers.providers.registry import KINDS

__all__ = ["EmulatorProcess", "Sandbox", "free_port", "mcp_client"]

# Where the sandbox exports each key kind's key (one emulator, and one provider named after it, per kind).
PROVIDER_KEY_VARS = {name: spec.key_variable() for name, spec in KINDS.items() if spec.needs_key}
# Which providers of emulators/providers.json a sandbox runs (see ``emulator_providers``).
ProviderChoice = Literal["starter", "all"] | tuple[str, ...]
_EMULATOR_URL = "emulator:"  # emulators/providers.json writes each base URL as emulator:<kind>[/path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmulatorProcess:
    """Every provider emulator (``emulators.registry``) in one child process, on free ports."""

    folder: Path
    keys: dict[str, str]
    chunk_delay_s: float = 0.0
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def start(self, timeout_s: float = 15.0) -> None:
        ports_file = self.folder / "emulator-ports.json"
        ports_file.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "emulators", "--host", "127.0.0.1",
            "--ports-file", str(ports_file), "--chunk-delay-s", str(self.chunk_delay_s),
            "--all", *(arg for kind, key in self.keys.items() for arg in ("--key", f"{kind}={key}")),
        ]
        log = (self.folder / "emulators.log").open("ab")
        self.process = subprocess.Popen(command, cwd=CODE_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not ports_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulators did not start; see {self.folder / 'emulators.log'}")
            time.sleep(0.05)
        self.ports = orjson.loads(ports_file.read_bytes())

    def url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.ports[provider]}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def emulator_providers(emulators: EmulatorProcess, which: ProviderChoice = "starter") -> dict[str, Any]:
    """providers.json for the emulators (emulators/providers.json) with their base URLs filled in.

    ``which`` picks the providers: "starter" those of the starter config (the default stack an
    operator's ``init`` writes), "all" every entry, or the names given. Defaults, fallbacks and
    aliases that name a provider left out are dropped with it.
    """
    config: dict[str, Any] = orjson.loads(files("emulators").joinpath("providers.json").read_bytes())
    _keep_providers(config, _chosen(config, which))
    for provider in config["providers"].values():
        kind, _, path = provider["base_url"].removeprefix(_EMULATOR_URL).partition("/")
        provider["base_url"] = emulators.url(kind) + (f"/{path}" if path else "")
    return config


def _chosen(config: dict[str, Any], which: ProviderChoice) -> list[str]:
    if which == "all":
        return list(config["providers"])
    names = list(STARTER_PROVIDERS["providers"]) if which == "starter" else list(which)
    unknown = [n for n in names if n not in config["providers"]]
    if unknown:
        raise ValueError(f"emulators/providers.json has no provider {', '.join(unknown)}")
    return names


def _keep_providers(config: dict[str, Any], names: list[str]) -> None:
    config["providers"] = {n: p for n, p in config["providers"].items() if n in names}
    config["defaults"] = {c: t for c, t in config.get("defaults", {}).items() if t["provider"] in names}
    config["fallbacks"] = {c: [t for t in ts if t["provider"] in names]
                           for c, ts in config.get("fallbacks", {}).items()}
    config["aliases"] = {a: t for a, t in config.get("aliases", {}).items() if t["provider"] in names}


@dataclass
class Sandbox:
    """Emulators + config + a client token + the supervised stack, all in one temp folder."""

    chunk_delay_s: float = 0.0
    heartbeat_s: float = 0.5
    # Which providers of emulators/providers.json run: "starter" (the default three-provider
    # stack), "all" (every kind with an emulator), or names.
    run_providers: ProviderChoice = "starter"
    # Providers whose key the operator "forgot" to export: their workers run unconfigured.
    withhold_keys: tuple[str, ...] = ()
    # Adjusts the generated providers.json before start (fallbacks, tighter policies...).
    tweak: Callable[[dict[str, Any]], None] | None = None
    # Extra environment for the launcher, as an operator would export it (LLMC_* knobs).
    env: dict[str, str] = field(default_factory=dict)
    # Logs in a folder of their own beside the run folder (as `--log-dir` elsewhere), not RUN_DIR/logs.
    separate_log_dir: bool = False
    # The gateway's port on 127.0.0.1 (`llm-caller try --port N`); a free one when None.
    port: int | None = None
    # The name the throwaway client is registered under.
    client_name: str = "demo"
    root: Path = field(init=False)
    keys: dict[str, str] = field(init=False)
    token: str = field(init=False)
    emulators: EmulatorProcess = field(init=False)
    providers: ProvidersFile = field(init=False)  # the providers.json the stack runs with
    stack: Stack = field(init=False)

    def __enter__(self) -> Sandbox:
        # Short path under /tmp: unix socket paths are limited to ~107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="llmc-", dir="/tmp"))
        self.keys = {p: f"sk-emu-{p}-{secrets.token_hex(12)}" for p in PROVIDER_KEY_VARS}
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self.emulators = EmulatorProcess(self.root, self.keys, self.chunk_delay_s)
        self.emulators.start()
        config_dir = self.root / "config"
        config_dir.mkdir()
        providers = emulator_providers(self.emulators, self.run_providers)
        if self.tweak is not None:
            self.tweak(providers)
        self.providers = ProvidersFile.model_validate(providers)
        write_json_atomic(config_dir / "providers.json", providers)
        self.token = new_token()
        client = {"token_sha256": hash_token(self.token), "created_at": int(time.time())}
        registry = {"clients": {self.client_name: client}}
        ClientRegistry.model_validate(registry)
        write_json_atomic(config_dir / "client-registry.json", registry, mode=0o600)
        run_dir = self.root / "run"
        log_dir = self.root / "logs" if self.separate_log_dir else run_dir / "logs"
        self.stack = Stack(Settings(config_dir=config_dir, run_dir=run_dir, log_dir=log_dir,
                                    port=self.port or free_port(), heartbeat_s=self.heartbeat_s,
                                    store=StoreSettings.from_env(self.env)))  # LLMC_STORE_URL etc. reach the stack
        # The keys exist only in the launcher's view of the environment, as an operator's
        # shell would have them; the stack itself starts scrubbed.
        self.stack.start(environ=self.launcher_environ())
        self.stack.wait_ready()

    def launcher_environ(self) -> dict[str, str]:
        """The environment of the operator's shell: LLMC_* knobs and the provider keys."""
        environ = dict(os.environ)
        environ.update(self.env)
        environ.update({PROVIDER_KEY_VARS[p]: k for p, k in self.keys.items() if p not in self.withhold_keys})
        return environ

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stack.stop()
        with contextlib.suppress(Exception):
            self.emulators.stop()
        if os.environ.get("LLMC_KEEP_SANDBOX") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.port}/mcp"

    @property
    def log_dir(self) -> Path:
        return self.stack.settings.log_dir

    def client(self, mode: str = "auto", token: str | None = None) -> contextlib.AbstractAsyncContextManager[Client]:
        return mcp_client(self.url, self.token if token is None else token, mode)

    def wait_workers_up(self, timeout_s: float = 20.0) -> None:
        """Block until every worker has registered with the gateway (getHealth says up)."""
        import asyncio

        async def poll() -> None:
            deadline = time.monotonic() + timeout_s
            async with self.client() as client:
                while True:
                    result = await client.call_tool(GET_HEALTH, {})
                    workers = (result.structured_content or {}).get("workers", [])
                    if workers and all(w["up"] for w in workers):
                        return
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"workers not up after {timeout_s}s: {workers}")
                    await asyncio.sleep(0.1)

        asyncio.run(poll())


@contextlib.asynccontextmanager
async def mcp_client(url: str, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The official SDK client with a bearer token; ``mode`` picks the protocol era."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0)) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            yield client


@contextlib.contextmanager
def sandbox(**options: Any) -> Iterator[Sandbox]:
    with Sandbox(**options) as box:
        yield box

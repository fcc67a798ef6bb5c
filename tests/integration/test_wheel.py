"""The package as a user gets it: built into a wheel, installed into a fresh virtualenv, run from anywhere.

The wheel is built from the checkout with ``python -m build`` (sdist, then the wheel from the
sdist, as a release is made) and installed alone into a new virtualenv outside the checkout
(pip fetches the dependencies, reusing its cache). Every command then runs from an empty
temporary folder with a scrubbed environment and a throwaway HOME, so nothing can come from
the checkout or from the operator's own folders. Deselect with ``-m "not wheel"``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.sandbox import free_port, mcp_client
from shared.tool_names import GET_HEALTH

pytestmark = [pytest.mark.integration, pytest.mark.wheel, pytest.mark.timeout(600)]

SOURCE = Path(__file__).resolve().parents[2]
# The top-level packages pyproject.toml ships ([tool.setuptools.packages.find] include = ["cli*", ...]).
_PACKAGES = [pattern.rstrip("*") for pattern in tomllib.loads((SOURCE / "pyproject.toml").read_text(encoding="utf-8"))
             ["tool"]["setuptools"]["packages"]["find"]["include"]]
_TOKEN = re.compile(r"llmc_[A-Za-z0-9_-]{20,}")


@dataclass(frozen=True)
class Installed:
    """A virtualenv holding only the built wheel (and its dependencies), and a place to run it."""

    venv: Path
    wheel: Path
    home: Path
    timings: dict[str, float]

    @property
    def version(self) -> str:
        """The version pyproject.toml declares (which the wheel must carry)."""
        found = re.search(r'^version = "([^"]+)"', (SOURCE / "pyproject.toml").read_text(), re.MULTILINE)
        assert found is not None
        return found[1]

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "llm-caller"

    def env(self, **extra: str) -> dict[str, str]:
        """What a user's shell would give: PATH, a HOME of its own, no LLMC_* and no PYTHONPATH."""
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8", **extra}

    def run(self, *args: str, cwd: Path, timeout: float = 120,
            extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``llm-caller ARGS`` in ``cwd`` with the user's environment (plus ``extra``)."""
        return subprocess.run([str(self.command), *args], cwd=cwd, env=self.env(**(extra or {})), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def _timed(timings: dict[str, float], label: str, command: list[str], *, timeout: float, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> None:
    """Run one setup step, record how long it took, and fail with its output if it failed."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout)
    timings[label] = time.perf_counter() - started
    assert done.returncode == 0, f"{label} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


def _source_copy(target: Path) -> Path:
    """What the sdist is made of, copied out, so the build writes no egg-info or build/ into the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for package in _PACKAGES:
        shutil.copytree(SOURCE / package, target / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(SOURCE / name, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the sdist and wheel once, install the wheel alone into a fresh virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    timings: dict[str, float] = {}
    dist, source = base / "dist", _source_copy(base / "source")
    _timed(timings, "build sdist+wheel", [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
           cwd=base, timeout=300)
    wheels = sorted(dist.glob("llm_caller-*.whl"))
    assert len(wheels) == 1 and len(sorted(dist.glob("llm_caller-*.tar.gz"))) == 1, sorted(dist.iterdir())
    venv = base / "venv"
    _timed(timings, "create venv", [sys.executable, "-m", "venv", str(venv)], timeout=120)
    pip_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LLMC_", "VIRTUAL_ENV"))}
    _timed(timings, "pip install wheel", [str(venv / "bin" / "python"), "-m", "pip", "install",
                                          "--disable-pip-version-check", "-q", str(wheels[0])],
           cwd=base, env=pip_env, timeout=420)
    home = base / "home"
    home.mkdir()
    yield Installed(venv, wheels[0], home, timings)
    print("\nwheel test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "anywhere"
    folder.mkdir()
    return folder


def test_wheel_metadata_and_the_installed_code_come_from_the_wheel(installed: Installed, empty: Path) -> None:
    """License, extras, the console script; the venv imports its own copy, with the supervisord template."""
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import cli, importlib.metadata as m; from cli.stack import SUPERVISORD_CONF; d = m.metadata('llm-caller');"
         "print(cli.__file__); print(SUPERVISORD_CONF); print(d['License-Expression']);"
         "print(sorted(d.get_all('Provides-Extra'))); print([e.value for e in m.entry_points(group='console_scripts')"
         " if e.name == 'llm-caller'])"],
        cwd=empty, env=installed.env(), capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    site = str(installed.venv / "lib")
    assert where[0].startswith(site) and where[1].startswith(site), where
    assert Path(where[1]).is_file()
    assert where[2:] == ["LicenseRef-Proprietary", "['bench', 'otel', 'test']", "['cli.main:main']"]
    version = installed.run("--version", cwd=empty)
    assert version.stdout.strip() == f"llm-caller {installed.version}", version


def test_installed_demo_passes_from_an_empty_folder(installed: Installed, empty: Path) -> None:
    started = time.perf_counter()
    done = installed.run("demo", cwd=empty, timeout=240)
    installed.timings["llm-caller demo"] = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo OK" in done.stdout
    assert sorted(p.name for p in empty.iterdir()) == [], "demo left files in the folder it ran from"


def test_installed_try_serves_chat_and_stops_on_ctrl_c(installed: Installed, empty: Path) -> None:
    started = time.perf_counter()
    child = subprocess.Popen([str(installed.command), "try", "--port", str(free_port())], cwd=empty,
                             env=installed.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    assert child.stdout is not None
    try:
        lines = []
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops everything") or len(lines) > 200:
                break
        setup = {k: v for k, _, v in (line.partition(": ") for line in lines) if k in ("endpoint", "token")}
        assert set(setup) == {"endpoint", "token"}, "\n".join(lines)
        reply = asyncio.run(_chat(setup["endpoint"], setup["token"]))
        assert "Hello from the" in reply, reply
    finally:
        os.killpg(child.pid, signal.SIGINT)
        rest, _ = child.communicate(timeout=60)
    installed.timings["llm-caller try (serve, chat, stop)"] = time.perf_counter() - started
    assert child.returncode == 0, rest
    assert "every process it started has ended" in rest


async def _chat(url: str, token: str) -> str:
    async with mcp_client(url, token) as client:
        result = await client.call_tool("chat", {"prompt": "Are you installed?"})
        assert not result.is_error, result
        text: str = result.structured_content["text"] if result.structured_content else str(result.content)
        return text


async def _health(url: str, token: str) -> dict[str, Any]:
    async with mcp_client(url, token) as client:
        result = await client.call_tool(GET_HEALTH, {})
        assert not result.is_error, result
        health: dict[str, Any] = result.structured_content or {}
        return health


def test_installed_operator_path_with_a_signed_manifest(installed: Installed, empty: Path) -> None:
    """init, clients add, manifest sign/verify, up (checked), status, down: the operator's own
    folders (XDG defaults under the throwaway HOME), so only `up` is given an option."""
    started = time.perf_counter()
    config = installed.home / ".config" / "llm-caller"
    state = installed.home / ".local" / "state" / "llm-caller"
    keys, port = state / "keys", str(free_port())
    for step in (("init",),
                 ("keys", "generate", "--kind", "manifest"),
                 ("manifest", "sign", "--key", str(keys / "manifest.key.pem")),
                 ("manifest", "verify", "--pubkey", str(keys / "manifest.pub.pem"))):
        done = installed.run(*step, cwd=empty)
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
    site = next((installed.venv / "lib").glob("python3*/site-packages"))
    assert f"under {site}" in done.stdout, done.stdout  # the manifest covers this installation
    assert (config / "providers.json").is_file() and (keys / "manifest.pub.pem").is_file()
    added = installed.run("clients", "add", "alice", "--print-token", cwd=empty)
    token = added.stdout.strip()
    assert _TOKEN.fullmatch(token), added
    pubkey = {"LLMC_MANIFEST_PUBKEY": str(keys / "manifest.pub.pem")}
    try:
        up = installed.run("up", "--port", port, "--detach", cwd=empty, extra=pubkey)
        assert up.returncode == 0, up.stdout + up.stderr
        status = installed.run("status", cwd=empty)  # finds the stack and its port by itself
        assert status.returncode == 0, status.stdout + status.stderr
        running = {line.split()[0] for line in status.stdout.splitlines() if " RUNNING " in f" {line} "}
        assert running == {"gateway", "worker-anthropic", "worker-lmstudio", "worker-openai"}, status.stdout
        health = asyncio.run(_health(f"http://127.0.0.1:{port}/mcp", token))
        assert health["version"] == installed.version
        assert sorted(worker["provider"] for worker in health["workers"]) == ["anthropic", "lmstudio", "openai"]
    finally:
        down = installed.run("down", cwd=empty)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (state / "run" / "supervisord.pid").exists()
    assert list(empty.iterdir()) == []  # nothing written where the commands ran
    # A file slipped into the installation is caught: after `pip install --upgrade`, sign again.
    intruder = site / "gateway" / "intruder.py"
    intruder.write_text("")
    try:
        refused = installed.run("manifest", "verify", "--pubkey", str(keys / "manifest.pub.pem"), cwd=empty)
    finally:
        intruder.unlink()
    assert refused.returncode == 1 and "gateway/intruder.py" in refused.stderr, refused
    installed.timings["init..down with manifest"] = time.perf_counter() - started

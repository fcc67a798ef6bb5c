"""With LLMC_MANIFEST_PUBKEY set, gateway and workers refuse to start on a changed or planted file."""

from __future__ import annotations

import contextlib
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from cli.stack import REPO_ROOT, Stack
from harness.sandbox import free_port
from shared.manifest import CODE_DIRS, code_root, new_signing_keypair, sign_manifest
from shared.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    private, public = new_signing_keypair()
    (tmp_path / "m.key.pem").write_bytes(private)
    (tmp_path / "m.key.pem").chmod(0o600)
    (tmp_path / "m.pub.pem").write_bytes(public)
    config = tmp_path / "config"
    config.mkdir()
    (config / "providers.json").write_bytes(orjson.dumps({"providers": {}}))
    (config / "client-registry.json").write_bytes(b'{"clients": {}}')
    sign_manifest(code_root(), tmp_path / "m.key.pem", tmp_path / "manifest.json", config_dir=config)
    env = {"PATH": os.environ["PATH"], "LLMC_CONFIG_DIR": str(config), "LLMC_RUN_DIR": str(tmp_path / "run"),
           "LLMC_MANIFEST_PUBKEY": str(tmp_path / "m.pub.pem"), "LLMC_MANIFEST_FILE": str(tmp_path / "manifest.json")}
    return config, env


def _start(module: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *module], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=60)


@pytest.mark.parametrize("module", [["gateway"], ["workers", "openai"]])
def test_changed_file_stops_start_up_naming_it(signed: tuple[Path, dict[str, str]], module: list[str]) -> None:
    config, env = signed
    (config / "providers.json").write_bytes(orjson.dumps({"providers": {}, "aliases": {}}))
    result = _start(module, env)
    assert result.returncode == 78, result.stderr
    assert "signed manifest check failed" in result.stderr and "config/providers.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_manifest_is_a_refusal_not_a_warning(signed: tuple[Path, dict[str, str]]) -> None:
    _, env = signed
    Path(env["LLMC_MANIFEST_FILE"]).unlink()
    result = _start(["gateway"], env)
    assert result.returncode == 78 and "manifest" in result.stderr


def test_intact_installation_passes_the_check(signed: tuple[Path, dict[str, str]]) -> None:
    _, env = signed
    result = _start(["workers", "openai"], env)  # goes on to fail later: no link key in this bare env
    assert "manifest" not in result.stderr and result.returncode == 2
    assert "link" in result.stderr.lower()


def test_a_process_that_passed_the_check_holds_none_of_the_signature_code(signed: tuple[Path, dict[str, str]]
                                                                          ) -> None:
    """The check runs in a forked child: `cryptography` (~15 MB RSS) never stays in the gateway or a worker."""
    _, env = signed
    code = ("import sys\nfrom shared.startup_checks import refuse_start_unless_verified\n"
            "refuse_start_unless_verified('openai', 'llm-caller worker openai')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'shared.manifest'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr  # passed: a refusal would exit 78
    assert result.stdout.strip() == "[]"


# ---- planted code against a whole supervised stack, in a copy of the installation -------------

# The code a planted module runs: it appends one line to a marker file (the proof that it ran).
_MARK = "import pathlib\nwith open({marker!r}, 'a') as _f:\n    _f.write({what!r} + '\\n')\n"
# The planted gateway.tracing also loads the real module, so a stack that runs it works normally.
_SHADOW_TRACING = _MARK + ("_real = pathlib.Path(__file__).parent.with_suffix('.py')\n"
                           "exec(compile(_real.read_text(), str(_real), 'exec'))\n")


@pytest.fixture
def install_copy() -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A copy of the installation (code folders, supervisord.conf), signed, with its own config and run dir.

    Returns (root, marker file, environment for the launcher and CLI run in that copy).
    """
    base = Path(tempfile.mkdtemp(prefix="llmc-m-", dir="/tmp"))  # short: unix socket paths
    root = base / "install"
    for folder in CODE_DIRS:
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("supervisord.conf", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, root / name)
    private, public = new_signing_keypair()
    (base / "m.key.pem").write_bytes(private)
    (base / "m.key.pem").chmod(0o600)
    (base / "m.pub.pem").write_bytes(public)
    config = base / "config"
    config.mkdir()
    (config / "providers.json").write_bytes(orjson.dumps(
        {"providers": {"lmstudio": {"kind": "lmstudio", "base_url": "http://127.0.0.1:9"}}}))
    (config / "client-registry.json").write_bytes(b'{"clients": {}}')
    (config / "client-registry.json").chmod(0o600)
    env = {"PATH": os.environ["PATH"], "LLMC_CONFIG_DIR": str(config), "LLMC_RUN_DIR": str(base / "run"),
           "LLMC_PORT": str(free_port()), "LLMC_MANIFEST_PUBKEY": str(base / "m.pub.pem"),
           "LLMC_MANIFEST_FILE": str(base / "manifest.json")}
    signed = _in_copy(root, env, "manifest", "sign", "--key", str(base / "m.key.pem"),
                      "--out", env["LLMC_MANIFEST_FILE"])
    assert signed.returncode == 0, signed.stderr
    try:
        yield root, base / "marker.txt", env
    finally:
        with contextlib.suppress(Exception):
            _copy_stack(env).stop()
        shutil.rmtree(base, ignore_errors=True)


def _in_copy(root: Path, env: dict[str, str], *cli: str) -> subprocess.CompletedProcess[str]:
    """`llm-caller ARGS` run from the copy (the current folder wins over the editable install)."""
    return subprocess.run([sys.executable, "-m", "cli.main", *cli, "--root", str(root)] if cli[0] == "manifest"
                          else [sys.executable, "-m", "cli.main", *cli], capture_output=True, text=True,
                          env=env, cwd=root, timeout=120)


def _copy_stack(env: dict[str, str]) -> Stack:
    return Stack(Settings.from_env(env))


def _plant(root: Path, marker: Path) -> list[str]:
    """Plant a bytecode package shadowing gateway/tracing.py, and import-time code in a covered worker file."""
    source = root / "planted.py"
    source.write_text(_SHADOW_TRACING.format(marker=str(marker), what="gateway.tracing shadow ran"))
    (root / "gateway/tracing").mkdir()
    py_compile.compile(str(source), cfile=str(root / "gateway/tracing/__init__.pyc"), doraise=True)
    source.unlink()
    with (root / "workers/retry_hints.py").open("a") as handle:
        handle.write("\n" + _MARK.format(marker=str(marker), what="workers.retry_hints edit ran"))
    return ["gateway/tracing/__init__.pyc", "workers/retry_hints.py"]


def test_manifest_verify_names_planted_bytecode_that_shadows_a_module(
        install_copy: tuple[Path, Path, dict[str, str]]) -> None:
    root, marker, env = install_copy
    planted = _plant(root, marker)
    result = _in_copy(root, env, "manifest", "verify", "--pubkey", env["LLMC_MANIFEST_PUBKEY"],
                      "--manifest", env["LLMC_MANIFEST_FILE"])
    print(f"manifest verify exit {result.returncode}: {result.stderr.strip()}")
    assert result.returncode == 1
    assert f"added (not in the manifest): {planted[0]}" in result.stderr
    assert f"changed: {planted[1]}" in result.stderr


# Only LM Studio is configured in the copy, so only its worker runs beside the gateway.
_PROGRAMS = {"gateway": "gateway.log", "worker-lmstudio": "worker-lmstudio.log"}
_SETTLED = ("FATAL", "EXITED")


def _attempts(log_dir: Path) -> dict[str, int]:
    """Per program, how many starts were refused (one stderr line each)."""
    counts = {}
    for program, log in _PROGRAMS.items():
        text = (log_dir / log).read_text(errors="replace") if (log_dir / log).exists() else ""
        counts[program] = text.count("signed manifest check failed")
    return counts


def test_refused_start_runs_no_planted_code_does_not_loop_and_status_says_why(
        install_copy: tuple[Path, Path, dict[str, str]]) -> None:
    root, marker, env = install_copy
    planted = _plant(root, marker)
    started = time.monotonic()
    launched = subprocess.run([sys.executable, "-m", "cli.main", "up", "--detach"],
                              capture_output=True, text=True, env=env, cwd=root, timeout=120)
    up_s = time.monotonic() - started
    print(f"`up --detach` exit {launched.returncode} after {up_s:.1f}s: {launched.stderr.strip()[:300]}")
    assert launched.returncode == 1 and "will not be restarted" in launched.stderr, launched.stderr
    assert planted[0] in launched.stderr  # `up` says why at once instead of waiting for a gateway that never comes
    stack = _copy_stack(env)
    states: dict[str, str] = {}
    while time.monotonic() - started < 90:
        states = {p["name"]: p["statename"] for p in stack.processes()}
        if set(states) == set(_PROGRAMS) and all(s in _SETTLED for s in states.values()):
            break
        time.sleep(0.5)
    settled_s = time.monotonic() - started
    first = _attempts(stack.settings.log_dir)
    time.sleep(5)  # a negative check: long enough for supervisord's back-off to start any program again
    later = _attempts(stack.settings.log_dir)
    later_states = {p["name"]: p["statename"] for p in stack.processes()}
    status = subprocess.run([sys.executable, "-m", "cli.main", "status"], capture_output=True, text=True,
                            env=env, cwd=root, timeout=60)
    print(f"settled in {settled_s:.1f}s; states {states}; refused starts per program {first}, "
          f"5 s later {later}")
    print(status.stdout)
    assert not marker.exists(), f"planted code ran: {marker.read_text()}"
    assert all(s in _SETTLED for s in later_states.values()), later_states
    assert later == first, "supervisord kept restarting a refused program"
    assert all(1 <= n <= 4 for n in first.values()), first
    assert status.returncode == 0
    for program in _PROGRAMS:
        line = next(i for i, text in enumerate(status.stdout.splitlines()) if text.split(" ")[0].endswith(program))
        why = status.stdout.splitlines()[line + 1]
        assert why.strip().startswith("why:") and "refused to start (exit 78)" in why, status.stdout
    assert planted[0] in status.stdout and planted[1] in status.stdout

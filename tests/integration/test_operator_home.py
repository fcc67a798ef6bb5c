"""Commands remember the stack `up` started, and normal use leaves the checkout clean (#14.3, #14.9).

Real `llm-caller` processes (supervisord, gateway, workers on 127.0.0.1) with HOME and the
XDG folders pointed at a temporary folder, so nothing lands in the user's home.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.stack import REPO_ROOT
from harness.sandbox import free_port
from shared.settings import RECORD_NAME

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *argv: str, cwd: Path = REPO_ROOT,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m cli.main` with the code of ``cwd`` (the current folder wins on sys.path)."""
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def root() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="llmc-", dir="/tmp"))  # short: unix socket paths
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _home_env(root: Path, *, runtime: bool = True) -> dict[str, str]:
    """The operator's shell: no LLMC_* settings and no provider keys; HOME and XDG folders under ``root``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LLMC_", "XDG_")) and not k.endswith("_API_KEY")}
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "xc"), XDG_STATE_HOME=str(root / "xs"))
    if runtime:
        env["XDG_RUNTIME_DIR"] = str(root / "xr")
    return env


def test_status_restart_token_and_down_find_the_stack_by_its_run_folder_alone(root: Path) -> None:
    env = _home_env(root)
    config, run, logs, port = root / "cfg", root / "run", root / "logs", free_port()
    _ok(_cli(env, "init", "--config-dir", str(config)))
    _ok(_cli(env, "clients", "add", "ed", "--config-dir", str(config)))
    try:
        _ok(_cli(env, "up", "--detach", "--port", str(port), "--run-dir", str(run), "--config-dir", str(config),
                 "--log-dir", str(logs)))
        assert oct((run / RECORD_NAME).stat().st_mode & 0o777) == "0o600"
        status = _ok(_cli(env, "status", "--run-dir", str(run)))
        assert f"http://127.0.0.1:{port}/mcp" in status and str(config) in status and str(logs) in status
        assert "gateway                RUNNING" in status
        assert "restarted gateway" in _ok(_cli(env, "restart", "gateway", "--run-dir", str(run)))
        # The client lives in the config folder only the record names.
        token = _ok(_cli(env, "token", "issue", "--client", "ed", "--ttl", "5m", "--run-dir", str(run)))
        assert token.startswith("llmcs_")
        assert f"stopped the stack of {run}" in _ok(_cli(env, "down", "--run-dir", str(run)))
        assert not (run / RECORD_NAME).exists()
        gone = _cli(env, "status", "--run-dir", str(run))
        assert gone.returncode == 3 and f"not running (no stack answers in {run})" in gone.stdout
        down_again = _ok(_cli(env, "down", "--run-dir", str(run)))
        assert f"not running (no stack answers in {run})" in down_again
    finally:
        _cli(env, "down", "--run-dir", str(run))


def test_with_xdg_defaults_no_command_needs_options(root: Path) -> None:
    env = _home_env(root)
    run = root / "xs" / "llm-caller" / "run"
    port = free_port()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    # From another folder, and without XDG_RUNTIME_DIR as an MCP client or cron may start
    # a command: this tree's code on the path, the default folders from HOME/XDG.
    other = {**_home_env(root, runtime=False), "PYTHONPATH": str(REPO_ROOT)}
    _ok(_cli(env, "init"))
    assert (root / "xc" / "llm-caller" / "providers.json").is_file()
    try:
        up = _ok(_cli(env, "up", "--detach", "--port", str(port)))
        assert f"run folder {run}" in up and f"logs in {root / 'xs' / 'llm-caller' / 'logs'}" in up
        status = _ok(_cli(other, "status", cwd=elsewhere))
        assert f"running from {run}" in status and f"http://127.0.0.1:{port}/mcp" in status
        assert "stopped the stack of" in _ok(_cli(other, "down", cwd=elsewhere))
        gone = _cli(other, "status", cwd=elsewhere)
        assert gone.returncode == 3 and f"not running (no stack answers in {run})" in gone.stdout
    finally:
        _cli(env, "down")


def _copy_of_this_tree(target: Path) -> Path:
    """This checkout's files as git sees them (committed or not) in a fresh repository with one commit."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run([*git, *argv], cwd=target, check=True, capture_output=True)
    return target


def _git_status(tree: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=tree, capture_output=True,
                          text=True, check=True).stdout


def test_a_readme_walk_through_leaves_git_status_clean(root: Path) -> None:
    tree = _copy_of_this_tree(root / "tree")
    assert _git_status(tree) == ""
    env = _home_env(root)
    port = free_port()
    steps: list[tuple[str, ...]] = [
        ("demo",),  # what `make demo` runs once the virtualenv exists
        ("init",),
        ("clients", "add", "my-editor"),
        ("config", "providers", "add", "local", "--kind", "lmstudio", "--base-url", "http://127.0.0.1:9",
         "--model", "m1", "--no-probe", "--yes"),
        ("config", "check"),
        ("up", "--detach", "--port", str(port)),
        ("status",),
        # A running stack is found and changed through the same settings: a worker is added.
        ("config", "providers", "add", "local2", "--kind", "lmstudio", "--base-url", "http://127.0.0.1:9",
         "--model", "m2", "--no-probe", "--yes"),
        ("token", "issue", "--client", "my-editor", "--ttl", "5m"),
        ("keys", "generate", "--kind", "session"),
        ("down",),
    ]
    try:
        for step in steps:
            result = _cli(env, *step, cwd=tree, timeout=300)
            assert result.returncode in (0, 1) if step == ("config", "check") else result.returncode == 0, (
                f"{' '.join(step)}: exit {result.returncode}: {result.stdout}{result.stderr}")
            if step[:4] == ("config", "providers", "add", "local2"):
                assert "running stack: started worker-local2" in result.stdout + result.stderr
    finally:
        _cli(env, "down", cwd=tree)
    assert _git_status(tree) == "", "the walk-through left changes in the checkout"
    assert (root / "xs" / "llm-caller" / "keys" / "gateway.session.secret").is_file()
